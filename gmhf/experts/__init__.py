"""Built-in experts (`simulated`, `terminal`), registered through the same `gmhf_experts` hook as a plugin's."""
