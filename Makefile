# The two commands a newcomer needs: `make run` and `make test`. Everything else is set up here.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-any-hour install migrate demo bench lint format messages clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py load_demo

# The web server and the dialler's scheduler beside it; Ctrl-C stops both (the scheduler
# finishes the tick in flight).
run: demo
	@DEBUG=$${DEBUG:-1} $(PY) manage.py run_scheduler & scheduler=$$!; \
	trap 'kill $$scheduler 2>/dev/null; wait $$scheduler' INT TERM EXIT; \
	DEBUG=$${DEBUG:-1} $(PY) manage.py runserver 127.0.0.1:8000

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# The suite with the process clock moved (tests/clock.py) to instants that catch a test or a
# piece of code reading the wall clock: night and evening UTC, the US and EU daylight-saving
# changes, 29 February, New Year's Eve 23:30 in UTC and in New York. The `slow` and `browser`
# tests are left to `make test`: they are most of the suite's time, and the processes some of
# them start (chromium, the crash tests' workers) keep the real clock. What is left is CPU in
# one process with its own in-memory database, so ANY_HOUR_JOBS instants run side by side
# (each one's output printed when it ends). Every instant runs; the target fails if any did.
ANY_HOUR_INSTANTS ?= 2026-12-09T20:30:00Z 2026-11-01T06:30:00Z 2027-03-28T00:30:00Z \
	2028-02-29T03:00:00Z 2026-12-31T23:30:00Z 2027-01-01T04:30:00Z
ANY_HOUR_ARGS ?= -m "not slow and not browser and not fuzz" -q -p no:cacheprovider
ANY_HOUR_JOBS ?= 2

test-any-hour: install
	@mkdir -p var/any-hour; rm -f var/any-hour/*; \
	printf '%s\n' $(ANY_HOUR_INSTANTS) | xargs -P $(ANY_HOUR_JOBS) -I INSTANT sh -c \
	  '$(PY) -m pytest -p tests.clock --clock=INSTANT $(ANY_HOUR_ARGS) $(PYTEST_ARGS) \
	    > var/any-hour/INSTANT.log 2>&1 || touch var/any-hour/INSTANT.failed; \
	   echo "== the suite at INSTANT"; cat var/any-hour/INSTANT.log'; \
	failed=$$(cd var/any-hour && ls *.failed 2>/dev/null | sed 's/\.failed$$//'); \
	if [ -n "$$failed" ]; then echo "== failed at:" $$failed; exit 1; fi

bench: install
	$(PY) -m bench $(BENCH)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The catalogues in locale/: refresh the .po files after changing marked strings, translate
# locale/fr/LC_MESSAGES/django.po, then compile; the .mo files are committed (needs gettext).
messages: install
	$(PY) manage.py makemessages -l en -l fr --no-obsolete $(I18N_IGNORE)
	$(PY) manage.py compilemessages -l fr $(I18N_IGNORE)

I18N_IGNORE = --ignore=.venv --ignore=bench --ignore=tests --ignore=var --ignore=docs

clean:
	rm -rf $(VENV) var .pytest_cache
