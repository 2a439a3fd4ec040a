"""A CLEVR-format world: scenes, functional programs, questions, renderer, readers.

Modules: `camera` (the fixed camera and the directions of the spatial relations),
`scenes` (scenes in CLEVR's scene JSON schema), `render` (numpy ray-cast images),
`executor` and `questions` (CLEVR's functional programs and question families).
"""

from relzoo.datasets.clevr.executor import (
    ANSWERS,
    FUNCTIONS,
    ProgramError,
    SceneError,
    answer_to_index,
    execute,
    index_to_answer,
    program_to_str,
    validate_program,
    validate_scene,
)

__all__ = [
    "ANSWERS",
    "FUNCTIONS",
    "ProgramError",
    "SceneError",
    "answer_to_index",
    "execute",
    "index_to_answer",
    "program_to_str",
    "validate_program",
    "validate_scene",
]
