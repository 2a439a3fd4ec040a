"""A CLEVR-format world: scenes, functional programs, questions, renderer, readers.

Modules: `camera` (the fixed camera and the directions of the spatial relations),
`scenes` (scenes in CLEVR's scene JSON schema), `render` (numpy ray-cast images),
`executor` and `questions` (CLEVR's functional programs and question families).
"""
