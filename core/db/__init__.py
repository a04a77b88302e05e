"""The floor's database helpers: embedded SQLite backend and the threads async code reaches the ORM on."""
