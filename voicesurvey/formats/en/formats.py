# The admin's dates as an operator reads them in any country: ISO order, a 24-hour clock and
# the zone's abbreviation, instead of English's "Nov. 23, 2026, midnight". The zone is the
# operator's (voicesurvey.accounts.middleware).
DATETIME_FORMAT = "Y-m-d H:i T"
DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATE_FORMAT = "Y-m-d"
