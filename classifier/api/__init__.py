"""The REST API for integrators (/api/v1/): token or session auth, problem-details errors."""
