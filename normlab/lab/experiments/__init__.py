"""One module per experiment (see normlab.lab.registry for the contract)."""
