"""Faithful local stand-ins for the cloud providers, written from ../shared/specs (never from server.providers)."""
