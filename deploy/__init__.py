"""Running CO as it is deployed: the production stack and its smoke test."""
