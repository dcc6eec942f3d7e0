"""Writing to Stash: one mutation per item, its tags resolved or created, and scene markers."""
