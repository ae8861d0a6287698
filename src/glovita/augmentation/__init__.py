"""Transform pipelines: `factory.py` picks a policy, `policies/` implements each one."""
