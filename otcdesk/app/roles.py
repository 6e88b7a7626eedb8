"""Console roles (CONTRACTS.md). Kept free of imports so the CLI can list them without loading argon2."""

ROLES = ("trader", "sales", "risk", "compliance", "admin")
