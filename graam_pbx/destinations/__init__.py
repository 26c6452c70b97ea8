"""Destinations: where a call goes, as one typed reference to an object of the same tenant.

The low home of the idea: the domains that can be called (queues, IVR menus, …) register how
to find their objects, and the domains that send calls somewhere (inbound routes, queue
fallbacks, IVR options, …) register where they keep destinations; none imports the others.
"""
