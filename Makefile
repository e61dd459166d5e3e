# Journey: `make run` starts the site with its workers; `make test` runs every check.
# Both set up everything on a fresh Debian/Ubuntu machine with Python 3.11.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run test lint smoke browser screenshots migrate clean

$(STAMP): requirements.txt requirements-dev.txt requirements-nodeps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch and torchvision come through pip (never uv/poetry), pinned in requirements.txt.
	$(BIN)/pip install -q -r requirements-dev.txt
	# animal-mnist declares tensorflow, which its data file does not need.
	$(BIN)/pip install -q --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

# Only the tests need these: the browser tests drive Debian's Chromium (Playwright's own
# download is not used) and inject axe-core from node_modules. Installed where missing.
BROWSER_STAMP := node_modules/.installed
$(BROWSER_STAMP): package.json package-lock.json
	test -x /usr/bin/chromium || { apt-get update -q && apt-get install -y -q chromium; }
	command -v npm >/dev/null || { apt-get update -q && apt-get install -y -q nodejs npm; }
	npm ci --no-audit --no-fund
	touch $(BROWSER_STAMP)

install: $(STAMP)

migrate: install
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py loadcourse

run: migrate
	@echo "Demo accounts:"
	@$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runlocal

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# The apps' layering (pyproject.toml, [tool.importlinter]): dashboard, then courses / quizzes / mlworker, then accounts, then config.
	$(BIN)/lint-imports --no-cache
	$(BIN)/python manage.py makemigrations --check --dry-run -v 1

# The suite runs against whatever DATABASE_URL / CELERY_BROKER_URL say (Postgres + Redis on
# CI, the embedded defaults otherwise); the smoke test always runs on the embedded defaults.
# The browser tests (tests/browser, marker `browser`) are part of it: Chromium against a live
# server, axe-core for accessibility; `make browser` runs only them. Screenshots: test-artifacts/.
test: lint $(BROWSER_STAMP)
	mkdir -p var
	$(BIN)/python -m pytest -m "not smoke"
	$(MAKE) smoke

browser: install $(BROWSER_STAMP)
	mkdir -p var
	$(BIN)/python -m pytest tests/browser -m browser

# The README's pictures: the browser suite, also writing its chosen shots to docs/screenshots/.
screenshots: install $(BROWSER_STAMP)
	mkdir -p var
	JOURNEY_README_SHOTS=1 $(BIN)/python -m pytest tests/browser -m browser

smoke: install
	mkdir -p var
	env -u DATABASE_URL -u CELERY_BROKER_URL $(BIN)/python -m pytest -m smoke -p no:cacheprovider

clean:
	rm -rf $(VENV) var staticfiles
