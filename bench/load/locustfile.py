"""The simulated class, for locust (run by bench/load/run.py; not imported by the site).

Students sign in as they arrive and read the chapter; once every student is in, the class starts the
timed chapter test together. Each student answers question by question, saving as the page's script
does (free text typed in two or three goes, a changed mind now and then), hands in, follows the
grading, and then, for half of the class, launches a tiny experiment, watches it for a while and asks
the class's model about an image. Then the next test. One instructor keeps opening the class's pages
and its CSV export meanwhile.

Everything a student was told was saved is written down (`record.json`): for every answer, the
fields of the last save the server acknowledged, and any save sent after it whose answer never came
back. bench/load/checks.py compares that with the database. Every request is logged with its time,
kind and status (`requests.csv`), from which the runner takes its percentiles.

Configuration: a JSON file named by JOURNEY_LOAD_CONFIG (see run.py's `locust_config`).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import random
import re
import time
import uuid
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

import gevent
from gevent.event import Event
from locust import FastHttpUser, between, events, task

CONFIG = json.loads(Path(os.environ["JOURNEY_LOAD_CONFIG"]).read_text())
OUT = Path(CONFIG["out_dir"])
THINK = tuple(CONFIG["think"])  # seconds between two saves
READ = tuple(CONFIG["read"])  # seconds on a section page
rng = random.Random(CONFIG.get("seed", 19))

# ---------------------------------------------------------------- what the class did, for the checks

RECORD: dict = {
    "attempts": {},  # attempt id -> {"user", "answers": {position: {"acked", "unsure"}}, "handed_in"}
    "jobs": [],  # experiments the server accepted (ids)
    "jobs_refused": 0,  # the form said no (the quota): not an error
    "predictions": [],
    "test_started_at": None,
    "stopped_at": None,
    "signed_in": 0,
}
REQUESTS: list[tuple] = []  # (start time, kind, milliseconds, status, error)
PHASE = {"now": "sign-in"}
TEST_STARTS = Event()
_names = itertools.count()
DONE = {"students": 0}  # students who finished their cycles (CONFIG["cycles"]; 0: no limit)


@events.request.add_listener
def _log_request(request_type, name, response_time, response_length, response=None, exception=None, **kw):
    status = getattr(response, "status_code", 0) or 0
    REQUESTS.append((kw.get("start_time") or time.time(), name, round(response_time, 2), status,
                     type(exception).__name__ if exception else "", PHASE["now"]))  # fmt: skip


@events.test_start.add_listener
def _start(environment, **kw):
    def open_after_timeout():
        gevent.sleep(CONFIG["signin_timeout"])
        _open_test()

    gevent.spawn(open_after_timeout)

    def stop_when_done():
        TEST_STARTS.wait()
        gevent.sleep(CONFIG["duration"])
        PHASE["now"] = "stopping"
        environment.runner.quit()

    gevent.spawn(stop_when_done)

    def bound_requests():
        while True:
            gevent.sleep(0.5)
            if len(REQUESTS) >= CONFIG["max_requests"]:
                environment.runner.quit()
                return

    gevent.spawn(bound_requests)


def _open_test():
    if not TEST_STARTS.is_set():
        RECORD["test_started_at"] = time.time()
        PHASE["now"] = "test"
        TEST_STARTS.set()


@events.quitting.add_listener
def _dump(environment, **kw):
    RECORD["stopped_at"] = time.time()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "record.json").write_text(json.dumps(RECORD))
    with open(OUT / "requests.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t", "kind", "ms", "status", "error", "phase"])
        w.writerows(REQUESTS)


# ---------------------------------------------------------------- reading pages

FIELDSET = re.compile(r'<fieldset class="question" id="q(\d+)" data-autosave="([^"]+)"(.*?)</fieldset>', re.S)
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
PROMPT = re.compile(r'<div class="prompt"[^>]*>(.*?)</div>\s*(?:<p class="hint"|<ul|<div class="field"|<p class)', re.S)


def plain(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def questions_of(page: str) -> list[dict]:
    """Each question of an attempt page: its position, autosave URL, kind, and the values it offers."""
    out = []
    for pos, url, body in FIELDSET.findall(page):
        q = {"n": int(pos), "url": unescape(url), "name": f"q{pos}"}
        if 'type="radio"' in body:
            q["kind"] = "radio"
            q["values"] = re.findall(rf'name="q{pos}" id="[^"]*" value="([^"]*)"', body)
        elif 'type="checkbox"' in body:
            q["kind"] = "checkbox"
            q["values"] = re.findall(rf'name="q{pos}" id="[^"]*" value="([^"]*)"', body)
        elif "<select" in body:
            q["kind"] = "select"
            q["rows"] = re.findall(rf'name="(q{pos}-\d+)"', body)
            first = body.split("<select", 1)[1].split("</select>", 1)[0]
            q["values"] = [v for v in re.findall(r'<option value="([^"]*)"', first) if v]
        elif "<textarea" in body:
            q["kind"] = "text"
            m = PROMPT.search(body)
            q["prompt"] = plain(m.group(1)) if m else ""
        else:
            q["kind"] = "short"
        out.append(q)
    return out


def an_answer(q: dict) -> list[list[str]]:
    """The fields of one answer to `q`, as the page would post them."""
    name = q["name"]
    if q["kind"] == "radio":
        return [[name, rng.choice(q["values"])]]
    if q["kind"] == "checkbox":
        picked = rng.sample(q["values"], rng.randint(1, max(1, len(q["values"]) - 1)))
        return [[name, v] for v in sorted(picked)]
    if q["kind"] == "select":
        return [[row, rng.choice(q["values"])] for row in q["rows"]]
    if q["kind"] == "short":
        return [[name, rng.choice(["42", "0.2", "valid_pct", "learn.fine_tune(1)", "seed", str(rng.randint(1, 99))])]]
    pool = CONFIG["free_text"].get(q.get("prompt", "")) or CONFIG["any_answers"]
    return [[name, rng.choice(pool)]]


def typing(fields: list[list[str]]) -> list[list[list[str]]]:
    """A free-text answer as it grows: saved after each of two or three goes at typing."""
    name, text = fields[0]
    words = text.split()
    if len(words) < 6:
        return [fields]
    cuts = sorted(rng.sample(range(2, len(words)), min(2, len(words) - 3)))
    return [[[name, " ".join(words[:c])]] for c in cuts] + [fields]


def png_bytes() -> bytes:
    """A small PNG of the kind students ask about: a dark blob on white, 28 px."""
    import struct
    import zlib

    w = h = 28
    cx, cy, r = rng.randint(9, 18), rng.randint(9, 18), rng.randint(5, 9)
    rows = b"".join(
        b"\x00" + bytes(30 if (x - cx) ** 2 + (y - cy) ** 2 < r * r else 250 for x in range(w)) for y in range(h)
    )

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))  # fmt: skip


def multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    for k, (filename, data, ctype) in files.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; filename="{filename}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n".encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Visitor(FastHttpUser):
    abstract = True
    network_timeout = 60.0
    connection_timeout = 60.0

    def csrf(self) -> str:
        for cookie in self.client.cookiejar:
            if cookie.name == "csrftoken":
                return cookie.value
        return ""

    def post(self, url, fields, name, *, redirects=False, headers=None):
        body = urlencode([("csrfmiddlewaretoken", self.csrf()), *[tuple(f) for f in fields]])
        return self.client.post(
            url, data=body, name=name, allow_redirects=redirects, headers={**FORM, **(headers or {})}
        )

    def sign_in(self, username: str) -> None:
        for _ in range(5):  # a student whose sign-in fails tries again
            self.client.get("/accounts/login/", name="sign-in page")
            r = self.post("/accounts/login/", [["username", username], ["password", CONFIG["password"]]], "sign in")
            if r.status_code == 302:
                return
            gevent.sleep(rng.uniform(2, 5))
        raise RuntimeError(f"{username} could not sign in: {r.status_code}")


class Student(Visitor):
    weight = 1
    wait_time = between(1, 3)

    def on_start(self):
        self.index = next(_names)
        self.username = CONFIG["students"][self.index % len(CONFIG["students"])]
        share = CONFIG["experiment_share"]  # spread evenly: with 0.5, every second student
        self.launches = int((self.index + 1) * share) > int(self.index * share)
        self.cycles_left = CONFIG.get("cycles") or -1
        self.sign_in(self.username)
        RECORD["signed_in"] += 1
        if RECORD["signed_in"] >= len(CONFIG["students"]):
            _open_test()
        # Until the whole class is in, read the chapter.
        sections = CONFIG["sections"]
        first = True
        while first or not TEST_STARTS.is_set():
            self.read(rng.choice(sections), mark=first)
            first = False

    def read(self, slug: str, *, mark: bool) -> None:
        self.client.get(f"/chapter/{slug}/", name="read section")
        TEST_STARTS.wait(timeout=rng.uniform(*READ))
        if mark:
            self.client.post(
                f"/chapter/{slug}/read/", name="mark read",
                headers={"X-CSRFToken": self.csrf(), "Accept": "application/json"},
            )  # fmt: skip

    def think(self):
        gevent.sleep(rng.uniform(*THINK))

    @task
    def take_the_test(self):
        if self.cycles_left == 0:
            gevent.sleep(1)
            return
        self.cycles_left -= 1
        try:
            attempt_id, questions = self.start_test()
            if attempt_id is None:
                return
            answers = self.answer(attempt_id, questions)
            if not self.hand_in(attempt_id, answers):
                return
            self.follow_grading(attempt_id)
            if self.launches:
                self.experiment()
        finally:
            if self.cycles_left == 0:
                DONE["students"] += 1
                if DONE["students"] >= len(CONFIG["students"]):
                    PHASE["now"] = "stopping"
                    # From a greenlet of its own: quitting stops every user, this one included.
                    gevent.spawn(self.environment.runner.quit)

    # ---------------------------------------------------------------- the test

    def start_test(self):
        r = self.post("/quizzes/chapter/", [["mode", "test"], ["timed", "on"]], "start test")
        match = re.search(r"/quizzes/attempts/(\d+)/", r.headers.get("Location", "") or "")
        if r.status_code != 302 or not match:
            return None, []
        attempt_id = match.group(1)
        page = self.client.get(f"/quizzes/attempts/{attempt_id}/", name="test page")
        self.record = RECORD["attempts"].setdefault(
            attempt_id, {"user": self.username, "answers": {}, "handed_in": False}
        )
        return attempt_id, questions_of(page.text or "")

    def save(self, attempt_id: str, q: dict, fields: list) -> bool:
        slot = self.record["answers"].setdefault(str(q["n"]), {"acked": None, "unsure": []})
        slot["unsure"].append(fields)  # until the server says it is saved
        r = self.post(q["url"], fields, "autosave", headers={"X-CSRFToken": self.csrf(), "Accept": "application/json"})
        if r.status_code == 200 and (r.json() or {}).get("saved"):
            slot["acked"], slot["unsure"] = fields, []
            return True
        return False

    def answer(self, attempt_id: str, questions: list[dict]) -> dict[int, list]:
        given: dict[int, list] = {}
        for q in questions:
            self.think()
            fields = an_answer(q)
            steps = typing(fields) if q["kind"] == "text" else [fields]
            for i, step in enumerate(steps):
                if i:
                    self.think()
                self.save(attempt_id, q, step)
            given[q["n"]] = fields
            if given and rng.random() < CONFIG["change_mind"]:
                # Back to an earlier question, another answer.
                other = rng.choice([x for x in questions if x["n"] in given])
                self.think()
                given[other["n"]] = an_answer(other)
                self.save(attempt_id, other, given[other["n"]])
        return given

    def hand_in(self, attempt_id: str, given: dict[int, list]) -> bool:
        """The page's form: every answer once more, and "Hand it in"."""
        self.think()
        fields = [f for n in sorted(given) for f in given[n]] + [["action", "submit"]]
        for n, f in given.items():
            self.record["answers"].setdefault(str(n), {"acked": None, "unsure": []})["unsure"].append(f)
        self.record["handed_in"] = "unsure"
        r = self.post(f"/quizzes/attempts/{attempt_id}/save/", fields, "hand in")
        if r.status_code == 302 and "/review/" in (r.headers.get("Location") or ""):
            self.record["handed_in"] = True
            for n, f in given.items():
                self.record["answers"][str(n)].update(acked=f, unsure=[])
            return True
        return False

    def follow_grading(self, attempt_id: str) -> None:
        self.client.get(f"/quizzes/attempts/{attempt_id}/review/", name="results page")
        give_up = time.monotonic() + CONFIG["grade_watch"]
        while time.monotonic() < give_up:
            gevent.sleep(2)  # quiz.js asks every 2 s while a grade is pending
            r = self.client.get(f"/quizzes/attempts/{attempt_id}/status/", name="grading status")
            if r.status_code != 200 or not (r.json() or {}).get("pending"):
                return

    # ---------------------------------------------------------------- experiments

    def experiment(self) -> None:
        self.client.get("/experiments/new/", name="experiment form")
        self.think()
        r = self.post("/experiments/new/", [[k, str(v)] for k, v in CONFIG["tiny_experiment"].items()], "launch")
        match = re.search(r"/experiments/(\d+)/$", r.headers.get("Location", "") or "")
        model_id = CONFIG["model_id"]  # the class's model, shared by the instructor
        if r.status_code == 302 and match:
            job_id = match.group(1)
            RECORD["jobs"].append(int(job_id))
            self.client.get(f"/experiments/{job_id}/", name="experiment page")
            give_up = time.monotonic() + CONFIG["job_watch"]
            while time.monotonic() < give_up:
                gevent.sleep(1)  # job.js asks every second while the job is live
                s = self.client.get(f"/experiments/{job_id}/status/", name="experiment status")
                state = (s.json() or {}) if s.status_code == 200 else {}
                if not state.get("live"):
                    if state.get("state") == "succeeded":
                        model_id = int(job_id)  # their own model came back in time: ask it
                    break
        elif r.status_code == 200:
            RECORD["jobs_refused"] += 1
        for _ in range(CONFIG["predictions"] if model_id else 0):
            self.think()
            self.predict(model_id)

    def predict(self, job_id: int) -> None:
        body, ctype = multipart(
            {"csrfmiddlewaretoken": self.csrf()}, {"images": ("mine.png", png_bytes(), "image/png")}
        )
        r = self.client.post(
            f"/experiments/{job_id}/predict/", data=body, name="predict", allow_redirects=False,
            headers={"Content-Type": ctype},
        )  # fmt: skip
        match = re.search(r"/experiments/predictions/(\d+)/$", r.headers.get("Location", "") or "")
        if r.status_code != 302 or not match:
            return
        pid = match.group(1)
        RECORD["predictions"].append(int(pid))
        self.client.get(f"/experiments/predictions/{pid}/", name="prediction page")
        give_up = time.monotonic() + CONFIG["prediction_watch"]
        while time.monotonic() < give_up:
            gevent.sleep(0.5)  # job.js asks twice a second until the answer comes
            s = self.client.get(f"/experiments/predictions/{pid}/status/", name="prediction status")
            if s.status_code != 200 or not (s.json() or {}).get("live"):
                return


class Instructor(Visitor):
    fixed_count = 1
    wait_time = between(3, 8)

    def on_start(self):
        self.sign_in(CONFIG["instructor"])
        self.pages = [
            (f"/classes/{CONFIG['classroom_id']}/", "class page"),
            (f"/classes/{CONFIG['classroom_id']}/questions/", "class questions"),
            (f"/classes/{CONFIG['classroom_id']}/jobs/", "class experiments"),
            (f"/classes/{CONFIG['classroom_id']}/review/", "class review queue"),
            (f"/classes/{CONFIG['classroom_id']}/export.csv", "class CSV"),
        ]

    @task
    def look(self):
        for url, name in self.pages:
            self.client.get(url, name=name)
            gevent.sleep(rng.uniform(0.5, 2))
