"""`hotline twilio configure` and `hotline doctor` against the offline stand-in."""

from __future__ import annotations

from datetime import date

from rq import Worker

from hotline.core.extensions import jobs, settings
from hotline.operations import doctor
from hotline.operations.doctor import Level
from tests.conftest import PUBLIC_BASE_URL


def test_configure_fixes_a_wrong_webhook_and_a_second_run_changes_nothing(app, stand_in):
    stand_in.voice_url = f"{PUBLIC_BASE_URL}/old/voice"  # set by hand, long ago
    assert doctor.check_webhooks(settings()).level == Level.WARNING
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["twilio", "configure", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would change voice_url: {PUBLIC_BASE_URL}/old/voice -> " \
           f"{PUBLIC_BASE_URL}/twilio/voice" in dry.output
    assert stand_in.voice_url == f"{PUBLIC_BASE_URL}/old/voice"  # a dry run changes nothing
    first = runner.invoke(args=["twilio", "configure"])
    assert first.exit_code == 0, first.output
    assert "changed sms_fallback_url: (unset) -> " \
           f"{PUBLIC_BASE_URL}/twilio/sms/fallback" in first.output
    assert stand_in.voice_url == f"{PUBLIC_BASE_URL}/twilio/voice"
    assert stand_in.fallback_url == f"{PUBLIC_BASE_URL}/twilio/voice/fallback"
    assert stand_in.status_callback_url == f"{PUBLIC_BASE_URL}/twilio/voice/status"
    assert stand_in.sms_url == f"{PUBLIC_BASE_URL}/twilio/sms"
    second = runner.invoke(args=["twilio", "configure"])
    assert second.exit_code == 0 and "no change" in second.output
    assert len([e for e in stand_in.rest_log if e[0] == "POST"]) == 1
    assert doctor.check_webhooks(settings()).level == Level.OK


def test_configure_refuses_http_in_production(app):
    cfg = settings().replace(ENV="production", PUBLIC_BASE_URL="http://hotline.org")
    from hotline.operations import number
    try:
        number.plan(cfg)
    except number.ConfigureError as exc:
        assert "https" in str(exc)
    else:
        raise AssertionError("an http:// PUBLIC_BASE_URL was accepted in production")


def test_configure_says_when_the_account_has_no_such_number(app, stand_in):
    app.extensions["hotline.settings"] = settings().replace(HOTLINE_NUMBER="+16175550111")
    result = app.test_cli_runner().invoke(args=["twilio", "configure"])
    assert result.exit_code != 0 and "no number +16175550111" in result.output


def test_twilio_credentials_checked(app, stand_in):
    assert doctor.check_twilio_account(settings()).level == Level.OK
    wrong = settings().replace(TWILIO_AUTH_TOKEN="x" * 32)
    result = doctor.check_twilio_account(wrong)
    assert result.level == Level.FAILURE and "TWILIO_AUTH_TOKEN" in result.message


def test_redis_down_is_a_failure(app_on_own_redis, own_redis):
    with app_on_own_redis.app_context():
        assert doctor.check_redis(settings()).level == Level.OK
        own_redis.stop()
        result = doctor.check_redis(settings())
        assert result.level == Level.FAILURE and "REDIS_URL" in result.message
        assert doctor.check_worker(settings()).level == Level.FAILURE


def test_no_worker_is_a_failure_and_no_scheduler_a_warning(app):
    result = doctor.check_worker(settings())
    assert result.level == Level.FAILURE and "hotline worker" in result.message
    worker = Worker([jobs.queue], connection=jobs.queue.connection)
    worker.register_birth()
    worker.heartbeat()
    try:
        assert doctor.check_worker(settings()).level == Level.WARNING
        jobs.queue.connection.set(doctor.SCHEDULER_LOCK, worker.name, ex=60)
        assert doctor.check_worker(settings()).level == Level.OK
    finally:
        worker.register_death()


def test_nobody_on_shift_is_a_warning(app, make_supporter, clock):
    app.extensions["hotline.settings"] = settings().replace(REQUIRE_TRAINING=True)
    result = doctor.check_coverage(settings(), clock.now)
    assert result.level == Level.WARNING and "nobody trained on shift now" in result.message
    ada = make_supporter("Ada", available=True)
    ada.trained_on, ada.refresher_due = date(2026, 1, 5), date(2099, 1, 5)
    from hotline.core.extensions import db
    db.session.commit()
    assert doctor.check_coverage(settings(), clock.now).level == Level.OK


def test_a_bad_crisis_number_is_a_failure(app):
    assert doctor.check_numbers(settings()).level == Level.OK
    bad = settings().replace(CRISIS_LINE_NUMBER="+1 555 12")
    result = doctor.check_numbers(bad)
    assert result.level == Level.FAILURE and "CRISIS_LINE_NUMBER" in result.message


def test_database_at_head(app):
    result = doctor.check_database(settings())
    assert result.level == Level.OK, result


def test_exit_codes_and_one_line_per_check(app, monkeypatch):
    results = doctor.run(app)
    assert len(results) == len(doctor.CHECKS)
    assert doctor.exit_code(results) == 2  # no worker, the example URL does not answer
    assert doctor.exit_code([doctor.ok("a", "b"), doctor.warning("c", "d")]) == 1
    assert doctor.exit_code([doctor.ok("a", "b")]) == 0


def test_an_untrained_supporter_does_not_cover_a_shift(app, make_supporter, clock):
    make_supporter("Bea", available=True)  # on, but no training record
    assert doctor.check_coverage(settings(), clock.now).level == Level.OK  # none required
    app.extensions["hotline.settings"] = settings().replace(REQUIRE_TRAINING=True)
    result = doctor.check_coverage(settings(), clock.now)
    assert result.level == Level.WARNING and "now" in result.message


def test_the_stand_in_checks_a_number_update_against_the_spec(app, stand_in):
    from hotline.telephony import api as twilio_api
    from hotline.core.errors import TwilioApiError
    sid = twilio_api.find_number(settings(), settings().HOTLINE_NUMBER).sid
    try:
        twilio_api.update_number(settings(), sid, {"voice_method": "PATCH"})
    except TwilioApiError as exc:
        assert "400" in str(exc)
    else:
        raise AssertionError("the stand-in accepted a VoiceMethod the spec forbids")
    assert stand_in.number_methods == {}


def test_the_stand_in_refuses_a_webhook_off_the_apps_origin(app, stand_in):
    from hotline.telephony import api as twilio_api
    from hotline.core.errors import TwilioApiError
    sid = twilio_api.find_number(settings(), settings().HOTLINE_NUMBER).sid
    try:
        twilio_api.update_number(settings(), sid, {"voice_url": "http://169.254.169.254/x"})
    except TwilioApiError:
        pass
    else:
        raise AssertionError("the stand-in would request another origin (SSRF)")
    assert stand_in.voice_url == f"{PUBLIC_BASE_URL}/twilio/voice"


def test_doctor_command_exits_with_the_worst_level(app):
    result = app.test_cli_runner().invoke(args=["doctor"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2
    assert len(lines) == len(doctor.CHECKS)
    assert any(line.startswith("FAILURE worker: no worker heartbeat") for line in lines)


def test_a_gap_later_today_is_a_warning_naming_when(app, make_supporter, clock):
    from hotline.core.extensions import db
    from hotline.roster import shifts
    zone = shifts.program_zone()
    local = clock.now.astimezone(zone)
    ada = make_supporter("Ada", available=False)
    # On shift from an hour ago to three hours from now, every day: a gap after that.
    for day in range(7):
        shifts.add_shift(db.session, ada, day, f"{(local.hour - 1) % 24:02d}:00",
                         f"{(local.hour + 3) % 24:02d}:00")
    db.session.commit()
    result = doctor.check_coverage(settings(), clock.now)
    assert result.level == Level.WARNING
    assert "from" in result.message and "now" not in result.message.split("(")[0]


def test_settings_that_stop_the_start_are_a_failure_line():
    import os
    import subprocess
    import sys
    env = dict(os.environ, HOTLINE_ENV="bogus")
    done = subprocess.run([sys.executable, "-m", "hotline.cli", "doctor"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout.startswith("FAILURE settings: HOTLINE_ENV must be exactly one of")
