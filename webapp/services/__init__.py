"""Use cases: each public function is one unit of work that owns its transaction."""
