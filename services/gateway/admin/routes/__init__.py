"""Per-tenant admin routes, one module per resource."""
