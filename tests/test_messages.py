"""Every word the hotline sends or speaks comes from ivr_flows/, in every language it offers,
and the languages are listed once (issue 15, item 4: "Every message the hotline sends comes
from ivr_flows/; the languages are listed once").

Two halves: a scan of the code (no sentence is built inline where a text is sent or a phrase
spoken, and every message key the code names is one the loaders require in every language),
and behaviour (a missing key stops the start naming it; a third language is added in
ivr_flows/ alone; the supporters' command words are sms.yaml's ``supporter_commands``).
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
import yaml

from hotline import create_app
from hotline.callbacks import requests as callbacks
from hotline.followups import consent
from hotline.core import flows
from hotline.debriefs import texts as debrief_texts
from hotline.followups import schedule as followups
from hotline.pulse import words as pulse_words
from hotline.roster import supporters as roster
from hotline.text import words as texting
from hotline.core.errors import FlowError
from hotline.core.settings import ROOT
from tests.coordinators import login, make_user
from tests.test_sms import text

#: The code that sends texts or speaks: the app and its jobs. Not the Twilio stand-in (it
#: plays the phones, not the hotline) nor the dashboard (a web page, not a message).
SCANNED = [p for folder in ("hotline", "workers") for p in sorted((ROOT / folder).rglob("*.py"))
           if not {"simulator", "dashboard", "migrations"} & set(p.relative_to(ROOT).parts)]

#: Calls that put text on the wire: the TwiML verbs <Say> and <Message>, a REST text, a
#: text handed back to the SMS webhook, a phrase spoken by the voice helpers.
SINKS = {"say", "speak", "message", "send", "send_message", "Outgoing"}
#: Calls that look a text up by key, and where the key is: ``say(node, lang, key)``,
#: ``flows.prompt(lang, key)``, ``conv.msg(lang, key)``, ``flows.message(lang, key)``.
LOOKUPS = {"say": 2, "prompt": 1, "msg": 1, "reply": 1, "message": 1}
#: A word beside a space: prose ("Hello ", "press 1"), not a key ("offer_taken") nor a code.
PROSE = re.compile(r"[^\W\d_]{2,}\s|\s[^\W\d_]{2,}")


def _name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _strings(node: ast.AST):
    """The literal text in an argument (f-strings, concatenations and conditionals too),
    without descending into nested calls (a lookup there yields keys, not text)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.Call):
        return
    else:
        for child in ast.iter_child_nodes(node):
            yield from _strings(child)


def inline_sentences(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: text`` for each sentence written into a call that sends or speaks."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call) and _name(node) in SINKS:
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                found += [f"{filename}:{node.lineno}: {s!r}" for s in _strings(arg)
                          if PROSE.search(s)]
    return found


def _keys(node: ast.AST):
    """Literal keys in a key argument: constants, either side of a conditional, and an
    f-string as a pattern ("{key}_supporter" -> r".+_supporter")."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield re.escape(node.value)
    elif isinstance(node, ast.IfExp):
        yield from _keys(node.body)
        yield from _keys(node.orelse)
    elif isinstance(node, ast.JoinedStr):
        yield "".join(re.escape(v.value) if isinstance(v, ast.Constant) else ".+"
                      for v in node.values)


def message_keys(source: str, filename: str = "<source>") -> list[tuple[str, str, str]]:
    """(where, lookup, key pattern) for every literal key the code looks a text up by."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call) or _name(node) not in LOOKUPS:
            continue
        position = LOOKUPS[_name(node)]
        if len(node.args) > position:  # twiml.message(body) and node.say(text) are not lookups
            found += [(f"{filename}:{node.lineno}", _name(node), key)
                      for key in _keys(node.args[position])]
    return found


def keys_of() -> dict[str, frozenset[str]]:
    """Which files' keys each lookup may name (the loaders require each in every language)."""
    return {"say": flows.PROMPTS, "prompt": flows.PROMPTS, "msg": texting.MESSAGES,
            "reply": texting.MESSAGES, "message": texting.MESSAGES | followups.MESSAGES}


def _sources():
    return [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in SCANNED]


# --- the code ------------------------------------------------------------------------------

def test_no_module_writes_a_sentence_where_a_text_is_sent_or_a_phrase_spoken():
    """Before: webhooks/sms.py wrote its "could not take your message" reply inline, in
    English whatever the texter's language."""
    assert len(SCANNED) > 20 and any(name.endswith("text/views.py") for name, _ in _sources())
    found = [hit for name, source in _sources() for hit in inline_sentences(source, name)]
    assert found == []


def test_the_scan_finds_inline_sentences_and_lets_keys_through():
    """The scan above can fail: what it flags, and what it leaves alone."""
    flagged = inline_sentences('''
twiml.message(f"We could not take your message just now. Call {number}.", status_callback=u)
texts.send(number, "Your request moved on")
node.say("Hello " + name, voice=v)
speak(node, lang, "press 1" if a else key)
''')
    assert len(flagged) == 4
    assert inline_sentences('''
say(twiml, lang, "offer_taken")
texts.send(number, flows.message(lang, "missed_call"))
twiml.message(out.body, status_callback=public_url("sms.status"))
speak(node, lang, consent.flows().message(lang, "consent_voice"))
Outgoing(conv.msg("en", f"{key}_supporter"), to=number)
''') == []


def test_every_key_the_code_names_is_required_by_its_loader():
    """A key the code looks up is in the loader's required set, so a flows folder without it
    (in any language) stops the app at start instead of failing mid-call."""
    found = [hit for name, source in _sources() for hit in message_keys(source, name)]
    assert len(found) > 40
    known = keys_of()
    unknown = [(where, key) for where, lookup, key in found
               if not any(re.fullmatch(key, k) for k in known[lookup])]
    assert unknown == []
    # Keys chosen at run time from tables: the callback promise of each kind.
    assert set(callbacks.Promise.PROMPTS.values()) <= flows.PROMPTS
    assert set(callbacks.Promise.MESSAGES.values()) <= texting.MESSAGES
    assert {"consent_yes", "consent_confirm"} <= followups.MESSAGES  # yes_on_the_call's
    assert {"survey", "checkin"} <= followups.MESSAGES  # a follow-up's kind


def test_the_required_keys_are_the_shipped_ones():
    """No required key is dead (every one ships) and no shipped text goes unrequired."""
    def shipped(name, table):
        return set(yaml.safe_load((ROOT / "ivr_flows" / name).read_text())[table]["en"])
    assert shipped("voice.yaml", "prompts") == flows.PROMPTS
    assert shipped("sms.yaml", "messages") == texting.MESSAGES
    assert shipped("followups.yaml", "messages") == followups.MESSAGES
    assert shipped("debriefs.yaml", "messages") == debrief_texts.MESSAGES
    assert shipped("pulse.yaml", "texts") == pulse_words.TEXTS


# --- start-up ------------------------------------------------------------------------------

def _flows_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "ivr_flows"
    shutil.copytree(ROOT / "ivr_flows", folder)
    return folder


def _edit(folder: Path, name: str, change) -> None:
    path = folder / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _start(folder: Path):
    return create_app({"IVR_FLOWS_DIR": str(folder), "REDIS_URL": "redis://127.0.0.1:1/0"})


@pytest.mark.parametrize("name, table, key", [
    ("sms.yaml", "messages", "still_finding"),
    ("sms.yaml", "messages", "sorry"),
    ("voice.yaml", "prompts", "peer_calling"),
    ("followups.yaml", "messages", "callback_missed")])
def test_a_message_missing_in_every_language_stops_the_start_naming_it(tmp_path, name, table,
                                                                      key):
    """Before: only a key present in one language and not another was caught; a key gone
    from every language loaded, and the text failed when the hotline first sent it."""
    folder = _flows_copy(tmp_path)

    def drop(data):
        for texts in data[table].values():
            texts.pop(key)
    _edit(folder, name, drop)
    with pytest.raises(FlowError, match=rf"{re.escape(name)}: {table}\.en lacks \['{key}'\]"):
        _start(folder)


def test_a_language_listed_twice_is_refused(tmp_path):
    """Before: voice.yaml listed the languages, texting.py, followups.py and roster.py each
    again. Now languages.yaml is the list, and a voice.yaml with its own is refused."""
    folder = _flows_copy(tmp_path)
    _edit(folder, "voice.yaml", lambda d: d.update(
        languages={"en": {"say": "en-US", "voice": "Polly.Joanna", "speech": "en-US",
                          "name": "English"}}))
    with pytest.raises(FlowError, match=r"'languages' belongs in languages.yaml"):
        _start(folder)


FRENCH = {"name": "Français", "say": "fr-FR", "voice": "Polly.Lea", "speech": "fr-FR",
          "minutes": ["minute", "minutes"]}


def _add_french(folder: Path, *, texts: bool) -> None:
    """List French in languages.yaml; with ``texts``, give it every text (English copies,
    as a program would before translating) and its menu and crisis words."""
    _edit(folder, "languages.yaml", lambda d: d.update(fr=FRENCH))
    if not texts:
        return

    def voice(data):
        data["prompts"]["fr"] = data["prompts"]["en"]
        for menu in ("menu", "options", "match"):
            for choice in data[menu].values():
                choice["words"]["fr"] = choice["words"]["en"]

    def sms(data):
        data["messages"]["fr"] = data["messages"]["en"]
        data["crisis_words"]["fr"] = ["suicide"]
        data["language_words"]["fr"] = ["bonjour"]

    _edit(folder, "voice.yaml", voice)
    _edit(folder, "sms.yaml", sms)
    _edit(folder, "followups.yaml", lambda d: d["messages"].update(fr=d["messages"]["en"]))
    _edit(folder, "debriefs.yaml", lambda d: d["messages"].update(fr=d["messages"]["en"]))
    _edit(folder, "program.yaml", lambda d: d["texts"].update(fr=d["texts"]["en"]))
    _edit(folder, "pulse.yaml", lambda d: d["texts"].update(fr=d["texts"]["en"]))

    def roster_lists(data):
        for entries in data.values():
            for words in entries.values():
                words["fr"] = words["en"]

    _edit(folder, "roster.yaml", roster_lists)


def test_a_language_listed_without_its_texts_stops_the_start(tmp_path):
    folder = _flows_copy(tmp_path)
    _add_french(folder, texts=False)
    with pytest.raises(FlowError, match=r"voice.yaml: .*'fr'"):
        _start(folder)
    for name, loader in (("sms.yaml", texting.load), ("followups.yaml", followups.load)):
        with pytest.raises(FlowError, match=rf"{name}: .*'fr'"):
            loader(folder)


@pytest.fixture
def french(tmp_path, app_settings):
    """The app on a copy of ivr_flows/ that offers French too (a change in data only)."""
    folder = _flows_copy(tmp_path)
    _add_french(folder, texts=True)
    app_settings["IVR_FLOWS_DIR"] = str(folder)
    return folder


def test_a_language_added_in_ivr_flows_alone_reaches_the_roster_and_the_dashboard(
        french, app, session):
    """Before: the roster's list (roster.KNOWN_LANGUAGES) was written in the code, so a
    supporter could not be given a language the flows offered."""
    assert flows.offered() == ("en", "es", "fr")
    assert roster.add(session, "Rae", "+16175550161", 1, ("fr", "en")).languages == "fr,en"
    with pytest.raises(roster.RosterError, match="among en, es, fr"):
        roster.add(session, "Sol", "+16175550162", 1, ("de",))
    make_user("coord@example.org")
    client = app.test_client()
    assert login(client, "coord@example.org").status_code == 302
    page = client.get("/dashboard/roster").text
    assert re.findall(r'name="languages" value="(\w+)"', page)[:3] == ["en", "es", "fr"]


def test_a_text_in_the_added_language_is_answered_in_it(french, app, twilio):
    """The language guessed from a first text is any language of language_words."""
    _edit(french, "sms.yaml", lambda d: d["messages"]["fr"].update(
        intake="{program}: bonjour. Répondez 1, 2 ou 3. {crisis}"))
    app.extensions["hotline.texts"] = texting.load(french)
    [(_, body)] = text(twilio, "bonjour")
    assert body.startswith("Clinician Peer Support: bonjour. Répondez")


# --- words heard -----------------------------------------------------------------------------

def test_the_supporters_commands_are_the_words_of_supporter_commands(tmp_path, app_settings,
                                                                      request):
    """Before: supporter_commands in sms.yaml was required but never read; the commands were
    a dict in conversations.py. Now a program renames STATUS to ESTADO in the file alone."""
    folder = _flows_copy(tmp_path)
    _edit(folder, "sms.yaml", lambda d: d["supporter_commands"].update(status=["ESTADO"]))
    app_settings["IVR_FLOWS_DIR"] = str(folder)
    twilio = request.getfixturevalue("twilio")
    supporter = request.getfixturevalue("make_supporter")("Ada")
    [(_, status)] = text(twilio, "estado", sender=supporter.phone)
    assert status.startswith("You are ON.") and "no open request" in status
    [(_, unknown)] = text(twilio, "STATUS", sender=supporter.phone)
    assert unknown.startswith("Commands:")


@pytest.mark.parametrize("change, message", [
    (lambda c: c.pop("pass"), r"supporter_commands.pass is missing"),
    (lambda c: c.update(help=["HELP", "PASS"]), r"PASS means both pass and help"),
    (lambda c: c.update(dance=["DANCE"]), r"unknown commands \['dance'\]"),
    (lambda c: c.update({True: ["ON"]}), r"unknown commands \['True'\].*quote them"),
    (lambda c: c.update(end=["BYE", "END"]), r"END is a carrier opt-out word"),
])
def test_broken_supporter_commands_stop_the_start_naming_the_key(tmp_path, change, message):
    folder = _flows_copy(tmp_path)
    _edit(folder, "sms.yaml", lambda d: change(d["supporter_commands"]))
    with pytest.raises(FlowError, match=message):
        texting.load(folder)


def test_consent_words_are_read_from_followups_yaml(tmp_path, app):
    """The yes and no answered by text to "a check-in text?" are data too."""
    folder = _flows_copy(tmp_path)
    _edit(folder, "followups.yaml", lambda d: d["consent_words"].update({"yes": ["OUI"]}))
    app.extensions["hotline.followups"] = followups.load(folder)
    assert consent.flows().yes_words == {"OUI"}
    assert consent.flows().no_words == {"NO", "N", "NOPE"}
    _edit(folder, "followups.yaml", lambda d: d["consent_words"].update({"yes": ["NO"]}))
    with pytest.raises(FlowError, match=r"consent_words: \['NO'\] both yes and no"):
        followups.load(folder)


def test_the_sorry_text_is_in_the_texters_language(twilio, monkeypatch):
    """The reply when a text cannot be handled comes from sms.yaml, in the text's language."""
    def fails(*args, **kwargs):
        raise RuntimeError("the handler breaks")

    monkeypatch.setattr("hotline.text.conversations.handle", fails)
    [(_, english)] = text(twilio, "hello")
    [(_, spanish)] = text(twilio, "hola, necesito hablar")
    assert english == ("We could not take your message just now. Please call this number, "
                       "or call or text 988 to talk with someone now.")
    assert spanish.startswith("No pudimos recibir su mensaje ahora.") and "988" in spanish
