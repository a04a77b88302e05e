"""The built-in PicoClaw-compatible agent runtime (spec/builtin-runtime.md); imports no Django and no app."""

VERSION = "0.1.0"
