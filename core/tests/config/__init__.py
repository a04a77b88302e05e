"""Tests of core/config/, one file per module."""
