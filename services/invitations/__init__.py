"""The invitations service: participation, compliance, survey invitations, phone tasks."""
