"""The two client transports, each connection an `EdgeConnection` (`base`) for the hub.

- `socketio`: Socket.IO at `/socket.io/`, rooms joined with `join-project` and friends.
- `websocket`: plain JSON WebSocket at `/ws`, `/ws/ai` and `/ws/ai/<project_id>`.
"""
