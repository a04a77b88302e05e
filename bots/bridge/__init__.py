"""The bot bridge under `/api/bots/{id}/`: path dispatch, bearer auth, the event streams, send and cursors."""
