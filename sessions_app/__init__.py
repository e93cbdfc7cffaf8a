"""Practice, track and mock sessions (advance / retry / give up, mock time boxes)."""
