"""Topic files, each with a list ``CASES`` of ``ModuleCase`` (gathered by nn.catalog)."""
