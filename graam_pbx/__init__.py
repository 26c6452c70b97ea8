"""graam-pbx: the control plane of a multi-tenant call-centre switch beside Asterisk."""
