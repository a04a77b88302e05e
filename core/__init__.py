"""The floor every app stands on: config, errors, HTTP, SSE, database helpers; it imports no app."""
