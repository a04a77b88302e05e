"""Attachment routes that need agent credentials: downloads and room attachments (§2.7–§2.8)."""
