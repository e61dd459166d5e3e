"""How a run splits its images, in a module of its own: the web process's job form needs it, and
importing mlworker.training would load numpy and the data set code into every web process."""


def split_sizes(n_images: int, valid_pct: float) -> tuple[int, int]:
    """(training, validation) image counts of a run, cut as fastai's RandomSplitter cuts them.

    The validation set takes `int(valid_pct * n)` images, the training set the rest. Its
    DataLoader drops an incomplete last batch, so no batch can be larger than the training set:
    the form checks that before a job is queued, with these numbers.
    """
    n_valid = int(valid_pct * n_images)
    return n_images - n_valid, n_valid


SMALL_VALIDATION = 10  # fewer validation images than this, and one image moves the error rate by over 0.1


def validation_warning(class_counts: dict[str, int], valid_pct: float) -> str:
    """Why a run's error rate would say little: too few validation images, or classes likely to have
    none among them (a class whose share of the validation set is under one image). Empty when neither.

    fastai's RandomSplitter draws the validation images from all classes together, so a small class
    can be left out of them, and its errors then count nowhere."""
    n = sum(class_counts.values())
    _, n_valid = split_sizes(n, valid_pct)
    said = []
    if n_valid < SMALL_VALIDATION:
        said.append(
            f"Only {n_valid} of its {n} images would be kept to check the model, so one image more or less "
            f"right moves the error rate by {1 / max(n_valid, 1):.2f}."
        )
    thin = sorted(label for label, k in class_counts.items() if valid_pct * k < 1)
    if thin or n_valid < len(class_counts):
        which = f" (too few images of {', '.join(thin)})" if thin else ""
        said.append(f"Some classes may have no image among them{which}, and their mistakes would count nowhere.")
    return " ".join(said)
