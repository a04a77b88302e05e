"""Feishu: the Open API client, sending into chats as a bot with the mention relay, and its REST route."""
