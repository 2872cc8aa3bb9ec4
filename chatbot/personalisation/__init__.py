"""Personalisation: profiles learned from behaviour, profile-aware ranking, recommendations."""
