"""The participant bridge of PicoClaw 2026.6.x images: ids, event stream and send (participants.md)."""
