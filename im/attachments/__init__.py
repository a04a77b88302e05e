"""Message attachments (threads-attachments.md §2): media facts, blobs, multipart bodies, wire shape."""
