"""The Bots REST v1 routes (http-api.md §7): DRF views and the bot serializer."""
