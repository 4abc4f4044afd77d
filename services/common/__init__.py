"""The platform every Bürgerbüro service stands on: nothing domain-specific lives here."""
