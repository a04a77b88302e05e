"""The bot bridge's LLM proxy: the views, the upstream relay, usage rows and their database threads."""
