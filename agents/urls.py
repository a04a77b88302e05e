"""Agent routes: the agent list and lifecycle, logs, token rotation, and joining an agent to a room."""

from django.urls import path

from agents import views

urlpatterns = [
    path("api/v1/agents", views.AgentsView.as_view()),
    path("api/v1/agents/<str:agent_id>", views.AgentDetailView.as_view()),
    path("api/v1/agents/<str:agent_id>/start", views.AgentStartView.as_view()),
    path("api/v1/agents/<str:agent_id>/stop", views.AgentStopView.as_view()),
    path("api/v1/agents/<str:agent_id>/logs", views.AgentLogsView.as_view()),
    path("api/v1/agents/<str:agent_id>/token:rotate", views.AgentTokenRotateView.as_view()),
    path("api/v1/im/agents/join", views.AgentJoinView.as_view()),
]
