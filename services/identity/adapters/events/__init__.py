"""Identity event handlers (consumers) and event builders."""
