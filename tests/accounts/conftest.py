"""The class tests set deadlines on the small bank's quizzes."""

from tests.quizzes.conftest import mini_bank  # noqa: F401  (a fixture, used by name)
