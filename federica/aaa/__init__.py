"""AAA: accounts, projects, roles, tokens, OIDC, policy, audit, accounting."""
