"""Fixture modules the root conftest registers: the test database, live servers, streams through ASGI."""
