"""REST routes of agents (http-api.md §5, §6.11): parse, call one service or selector, render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from agents import lifecycle, selectors, services
from agents.credentials import auth_disabled, bearer_token, is_server_token
from agents.serializers import AgentJoinedSerializer, AgentSerializer, TokenRotationSerializer
from core.api import ApiView, ContractCharField, ContractSerializer, error_responses
from core.http import ApiError, query_value, request_locale

JOINED_TEXT = "agent joined successfully"


class AliasPathMixin:
    """The path id may be any name of the agent (participants.md §1.3): its id, `pt-alice`, `agent-Alice`,
    `alice`, `manager`. An id that names no agent is not found."""

    path_aliases: ClassVar[dict[str, Callable[[str], str]]] = {"agent_id": selectors.agent_id_resolve}

    def initial(self, request, *args: Any, **kwargs: Any) -> None:
        # After ApiView has trimmed and checked the path ids, before the handler: the handler gets the
        # resolved id, and an unresolved one as given, for its usual 404 text.
        super().initial(request, *args, **kwargs)
        for name, resolve in self.path_aliases.items():
            self.kwargs[name] = resolve(self.kwargs[name])


class AgentsView(ApiView):
    class InputSerializer(ContractSerializer):
        """The body of a worker creation (http-api.md §5.2); other fields are accepted and ignored."""

        name = ContractCharField()
        id = ContractCharField(source="agent_id")
        description = ContractCharField()
        profile = ContractCharField()
        runtime = ContractCharField()

    @extend_schema(responses={200: AgentSerializer(many=True)}, summary="List agents, statuses refreshed")
    def get(self, request):
        agents = lifecycle.agents_status_observe(selectors.agent_list())
        return Response(AgentSerializer(agents, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: AgentSerializer, **error_responses(400, 413, 503)},
        summary="Create a worker agent",
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        agent = services.agent_create(
            config=lifecycle.current_config_for_request(), **serializer.validated_data
        )
        return Response(AgentSerializer(agent).data, status=201)


class AgentDetailView(AliasPathMixin, ApiView):
    @extend_schema(responses={200: AgentSerializer, **error_responses(404)}, summary="Get an agent")
    def get(self, request, agent_id: str):
        [agent] = lifecycle.agents_status_observe([selectors.agent_get(agent_id)])
        return Response(AgentSerializer(agent).data)

    @extend_schema(responses={204: None, **error_responses(404, 409, 502)}, summary="Delete an agent")
    def delete(self, request, agent_id: str):
        services.agent_delete(agent_id=agent_id)
        return Response(status=204)


class AgentStartView(AliasPathMixin, ApiView):
    @extend_schema(
        request=None,
        responses={
            200: AgentSerializer,
            202: AgentSerializer,  # the box is still being provisioned: the start is queued
            **error_responses(404, 409, 502),
        },
        summary="Start an agent",
    )
    def post(self, request, agent_id: str):
        agent, queued = lifecycle.agent_start(agent_id=agent_id)
        return Response(AgentSerializer(agent).data, status=202 if queued else 200)


class AgentStopView(AliasPathMixin, ApiView):
    @extend_schema(
        request=None,
        responses={200: AgentSerializer, **error_responses(404, 409, 502)},
        summary="Stop an agent",
    )
    def post(self, request, agent_id: str):
        return Response(AgentSerializer(lifecycle.agent_stop(agent_id=agent_id)).data)


class AgentLogsView(AliasPathMixin, ApiView):
    @extend_schema(
        parameters=[OpenApiParameter("lines", int, description="1 to 5000, default 20")],
        responses={
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="the box's last log lines"),
            **error_responses(400, 404, 502),
        },
        summary="The last lines of an agent's box log",
    )
    def get(self, request, agent_id: str):
        lines = lifecycle.log_lines_parse(query_value(request, "lines"))
        text = lifecycle.agent_logs(agent_id=agent_id, lines=lines)
        return HttpResponse(text, content_type="text/plain; charset=utf-8")


class AgentTokenRotateView(AliasPathMixin, ApiView):
    """security.md S2.3: path 404 → 405 → 401 (the server token only, never an agent's) → the service."""

    @extend_schema(
        request=None,
        responses={200: TokenRotationSerializer, **error_responses(401, 404, 409, 502)},
        summary="Rotate an agent's api token",
    )
    def post(self, request, agent_id: str):
        _require_server_token(request)
        rotation = services.agent_token_rotate(agent_id=agent_id)
        return Response(TokenRotationSerializer(rotation).data)


def _require_server_token(request) -> None:
    token = bearer_token(request.headers.get("Authorization", ""))
    if not auth_disabled() and not is_server_token(token):
        raise ApiError(401, "unauthorized")


class AgentJoinView(ApiView):
    class InputSerializer(ContractSerializer):
        """The body of a join (http-api.md §6.11)."""

        agent_id = ContractCharField()
        room_id = ContractCharField()
        inviter_id = ContractCharField()
        locale = ContractCharField()

    @extend_schema(
        request=InputSerializer,
        responses={200: AgentJoinedSerializer, **error_responses(400, 404, 413, 502)},
        summary="Join an agent to a room",
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        agent = services.agent_join_room(
            agent_id=selectors.agent_id_resolve(data["agent_id"]),
            room_id=data["room_id"],
            inviter_id=data["inviter_id"],
            locale=request_locale(request, data["locale"]),
        )
        joined = {"message": JOINED_TEXT, "room_id": data["room_id"].strip(), "agent_id": agent.id}
        return Response(AgentJoinedSerializer(joined).data)
