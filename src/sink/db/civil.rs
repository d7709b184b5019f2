//! Gregorian calendar arithmetic shared by the readers of dates: Twitter's
//! `created_at` (`encode`) and a certificate's validity (`tls`). Pure.

/// The days of `month` (1 to 12) of `year` in the Gregorian calendar.
pub(super) fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The days from 1970-01-01 to the (proleptic Gregorian) date `year-month-day`
/// (negative before it), for years 0 to 9999: H. Hinnant's days from civil,
/// which counts years from a 1st of March, so that the leap day is the last of
/// its year, in eras of 400 years (146,097 days).
pub(super) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}
