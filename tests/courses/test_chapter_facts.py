"""Facts the chapter states that code can check: held to what fastai does, and to the site's own pages.

Each test reads its figures from the content files, so it fails if the text or fastai drifts.
"""

import ast
import builtins
import re

import pytest
import yaml
from django.conf import settings

from courses.services import DEFAULT_CONTENT_ROOT

SECTIONS = DEFAULT_CONTENT_ROOT / "sections"


def _number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, f"the chapter no longer says {pattern!r}"
    return int(match[1].replace(",", ""))


def _glossary_term(slug: str) -> dict:
    terms = yaml.safe_load((DEFAULT_CONTENT_ROOT / "glossary.yaml").read_text())
    return next(t for t in terms if t["slug"] == slug)


def test_the_batches_per_epoch_the_chapter_states_are_what_fastai_makes():
    import torch
    from fastai.data.core import Datasets
    from fastai.data.transforms import RandomSplitter
    from fastcore.basics import noop

    text = (SECTIONS / "05-neural-networks-and-sgd.md").read_text()
    example = text[text.index("A worked example") :]
    n_photos = _number(r"has ([\d,]+) photos", example)
    valid_pct = _number(r"With (\d+) percent held back", example) / 100
    n_train = _number(r"([\d,]+) are left for training", example)
    bs = _number(r"batches of (\d+)", example)
    stated = _number(r"each epoch is (\d+) batches", example)
    in_glossary = _number(r"updates the weights (\d+) times per epoch", _glossary_term("sgd")["example"])

    # Datasets.dataloaders is the call ImageDataLoaders.from_name_func ends in, with the chapter's
    # split; items are plain ints, because the number of batches depends only on how many there are.
    dsets = Datasets(
        list(range(n_photos)), [[noop]], splits=RandomSplitter(valid_pct=valid_pct, seed=42)(range(n_photos))
    )
    dls = dsets.dataloaders(bs=bs, device=torch.device("cpu"))

    assert len(dls.train_ds) == n_train
    assert dls.train.shuffle and dls.train.drop_last  # the reason the chapter gives
    assert len(dls.train) == stated == in_glossary
    assert sum(1 for _ in dls.train) == stated


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, re.S)


def test_the_prediction_code_uses_only_names_the_student_has():
    import fastai.vision.all as fastai_vision

    text = (SECTIONS / "03-first-model.md").read_text()
    training, prediction = _python_blocks(text)[0], _python_blocks(text[text.index("## Making a prediction") :])[0]
    defined = set(dir(builtins)) | set(dir(fastai_vision))
    for block in (training, prediction):
        # Names the block defines (assignments, functions, their arguments) count for all of it: a
        # loose check, but one that catches a name nothing defines, as `uploaded_file` was.
        nodes = list(ast.walk(ast.parse(block)))
        defined |= {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        defined |= {n.name for n in nodes if isinstance(n, ast.FunctionDef)}
        defined |= {n.arg for n in nodes if isinstance(n, ast.arg)}
        used = {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        assert used <= defined, f"nothing defines {sorted(used - defined)} in:\n{block}"

    # The file the code opens is the one the text tells the student to put in place.
    opened = re.search(r"PILImage\.create\('([^']+)'\)", prediction)[1]
    prose = text[text.index("## Making a prediction") : text.index(prediction)]
    assert f"`{opened}`" in prose


@pytest.mark.parametrize(
    "words, template",
    [
        ("**Run this experiment**", "courses/section.html"),
        ("**Ask your model**", "mlworker/job_detail.html"),
        ("**Predict**", "mlworker/job_detail.html"),
    ],
)
def test_the_first_model_section_names_buttons_the_pages_really_show(words, template):
    text = (SECTIONS / "03-first-model.md").read_text()
    assert words in text
    assert words.strip("*") in (settings.BASE_DIR / "templates" / template).read_text()
