"""REST routes of agents (http-api.md §5, §6.11): parse, call one service or selector, render."""

from __future__ import annotations

from django.http import HttpResponse
from rest_framework.response import Response

from agents import lifecycle, selectors, services
from agents.credentials import auth_disabled, bearer_token, is_server_token
from agents.serializers import AgentSerializer
from core.http import ApiError, ApiView, parse_json_body, query_value, request_locale
from im.serializers import format_time


class AgentsView(ApiView):
    def get(self, request):
        agents = lifecycle.agents_status_observe(selectors.agent_list())
        return Response(AgentSerializer(agents, many=True).data)

    def post(self, request):
        body = parse_json_body(request, strings=("name", "id", "description", "profile", "runtime"))
        agent = services.agent_create(
            config=lifecycle.current_config_for_request(),
            name=body.get("name", ""),
            agent_id=body.get("id", ""),
            description=body.get("description", ""),
            profile=body.get("profile", ""),
            runtime=body.get("runtime", ""),
        )
        return Response(AgentSerializer(agent).data, status=201)


class AgentDetailView(ApiView):
    def get(self, request, agent_id: str):
        [agent] = lifecycle.agents_status_observe([selectors.agent_get(agent_id)])
        return Response(AgentSerializer(agent).data)

    def delete(self, request, agent_id: str):
        services.agent_delete(agent_id=agent_id)
        return Response(status=204)


class AgentStartView(ApiView):
    def post(self, request, agent_id: str):
        agent, queued = lifecycle.agent_start(agent_id=agent_id)
        return Response(AgentSerializer(agent).data, status=202 if queued else 200)


class AgentStopView(ApiView):
    def post(self, request, agent_id: str):
        return Response(AgentSerializer(lifecycle.agent_stop(agent_id=agent_id)).data)


class AgentLogsView(ApiView):
    def get(self, request, agent_id: str):
        lines = lifecycle.log_lines_parse(query_value(request, "lines"))
        text = lifecycle.agent_logs(agent_id=agent_id, lines=lines)
        return HttpResponse(text, content_type="text/plain; charset=utf-8")


class AgentTokenRotateView(ApiView):
    """security.md S2.3: path 404 → 405 → 401 (the server token only, never an agent's) → the service."""

    def post(self, request, agent_id: str):
        _require_server_token(request)
        rotation = services.agent_token_rotate(agent_id=agent_id)
        return Response({"id": rotation.agent_id, "rotated_at": format_time(rotation.rotated_at)})


def _require_server_token(request) -> None:
    token = bearer_token(request.headers.get("Authorization", ""))
    if not auth_disabled() and not is_server_token(token):
        raise ApiError(401, "unauthorized")


class AgentJoinView(ApiView):
    def post(self, request):
        body = parse_json_body(request, strings=("agent_id", "room_id", "inviter_id", "locale"))
        agent = services.agent_join_room(
            agent_id=body.get("agent_id", ""),
            room_id=body.get("room_id", ""),
            inviter_id=body.get("inviter_id", ""),
            locale=request_locale(request, body.get("locale", "")),
        )
        return Response(
            {"message": "agent joined successfully", "room_id": body["room_id"].strip(), "agent_id": agent.id}
        )
