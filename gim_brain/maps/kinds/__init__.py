"""Map kinds: each module here registers one with :func:`gim_brain.maps.render.register_map_kind`.

A new kind is one new module in this folder: define ``draw(job: MapJob) -> list[Path]`` (write
the files into ``job.out``, return their paths) under ``@register_map_kind("name")``. It is found
by :func:`~gim_brain.maps.render.map_kinds` and offered by ``gim-brain map --kind``.
"""
