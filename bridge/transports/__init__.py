"""The two client transports behind one delivery interface (`bridge.delivery.ClientConnection`).

- `socketio`: Socket.IO at `/socket.io/`, rooms joined with `join-project` and friends.
- `websocket`: plain JSON WebSocket at `/ws`, `/ws/ai` and `/ws/ai/<project_id>`.
"""
