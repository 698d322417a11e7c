//! Realistic, seeded test data: names, e-mail addresses, phone numbers and company names from
//! `fake`, in English or Korean, all drawn from one random generator per test.

use std::sync::Mutex;

use fake::Fake;
use fake::faker::name::raw::{FirstName, LastName};
use fake::faker::phone_number::raw::CellNumber;
use fake::locales::{Data, EN};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The language of generated people and companies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    /// English names, US-style phone numbers.
    #[default]
    English,
    /// Korean names (김민준), `010-####-####` phones, Korean company names.
    Korean,
}

impl Locale {
    /// The BCP 47 tag stored with users: `en-US` or `ko-KR`.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::English => "en-US",
            Locale::Korean => "ko-KR",
        }
    }
}

/// `fake`'s data for Korean: Hangul names written family name first, mobile numbers.
#[derive(Debug, Clone, Copy)]
pub struct KoKr;

const KO_FAMILY: &[(&str, &str)] = &[
    ("김", "kim"),
    ("이", "lee"),
    ("박", "park"),
    ("최", "choi"),
    ("정", "jung"),
    ("강", "kang"),
    ("조", "cho"),
    ("윤", "yoon"),
    ("장", "jang"),
    ("임", "lim"),
    ("한", "han"),
    ("오", "oh"),
    ("서", "seo"),
    ("신", "shin"),
    ("권", "kwon"),
    ("황", "hwang"),
    ("안", "ahn"),
    ("송", "song"),
    ("류", "ryu"),
    ("홍", "hong"),
];

const KO_GIVEN: &[(&str, &str)] = &[
    ("민준", "minjun"),
    ("서준", "seojun"),
    ("도윤", "doyun"),
    ("예준", "yejun"),
    ("시우", "siwoo"),
    ("하준", "hajun"),
    ("지호", "jiho"),
    ("주원", "juwon"),
    ("지후", "jihoo"),
    ("준우", "junwoo"),
    ("서연", "seoyeon"),
    ("서윤", "seoyun"),
    ("지우", "jiwoo"),
    ("서현", "seohyun"),
    ("민서", "minseo"),
    ("하은", "haeun"),
    ("하윤", "hayun"),
    ("윤서", "yunseo"),
    ("지민", "jimin"),
    ("채원", "chaewon"),
];

const KO_FAMILY_NAMES: &[&str] = &[
    "김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신", "권", "황",
    "안", "송", "류", "홍",
];

const KO_GIVEN_NAMES: &[&str] = &[
    "민준", "서준", "도윤", "예준", "시우", "하준", "지호", "주원", "지후", "준우", "서연", "서윤",
    "지우", "서현", "민서", "하은", "하윤", "윤서", "지민", "채원",
];

impl Data for KoKr {
    const NAME_FIRST_NAME: &'static [&'static str] = KO_GIVEN_NAMES;
    const NAME_LAST_NAME: &'static [&'static str] = KO_FAMILY_NAMES;
    const NAME_TPL: &'static str = "{LastName}{FirstName}";
    const PHONE_NUMBER_FORMATS: &'static [&'static str] = &["02-^###-####", "031-^##-####"];
    const PHONE_CELL_NUMBER_FORMATS: &'static [&'static str] = &["010-^###-####"];
    const INTERNET_FREE_EMAIL_PROVIDER: &'static [&'static str] =
        &["naver.com", "daum.net", "kakao.com"];
}

const KO_COMPANY_STEMS: &[&str] = &[
    "한빛", "누리", "새봄", "다온", "하늘", "바다", "별빛", "가람", "온새", "미르",
];
const KO_COMPANY_SUFFIXES: &[&str] = &["주식회사", "테크", "랩스", "소프트", "시스템즈"];
const EN_COMPANY_SUFFIXES: &[&str] = &["Inc", "Labs", "Systems", "Group"];

/// A generated person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Full name as written in the locale.
    pub name: String,
    /// A unique e-mail address (the sequence number makes it unique in the database).
    pub email: String,
    /// A mobile number.
    pub phone: String,
    /// `en-US` or `ko-KR`.
    pub locale: &'static str,
}

/// The random generator of one test: seeded, so a seed reproduces every value.
#[derive(Debug)]
pub struct Fakes {
    seed: u64,
    locale: Locale,
    rng: Mutex<StdRng>,
    /// Whether any value was drawn: only then does a failed test print the seed.
    drawn: std::sync::atomic::AtomicBool,
}

impl Fakes {
    /// A generator from `seed`.
    pub fn new(seed: u64, locale: Locale) -> Fakes {
        Fakes {
            seed,
            locale,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            drawn: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The generator; a panic elsewhere cannot leave it half-written, so a poisoned lock is
    /// still usable.
    fn rng(&self) -> std::sync::MutexGuard<'_, StdRng> {
        self.drawn.store(true, std::sync::atomic::Ordering::Relaxed);
        self.rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The seed: set `HARNESS_SEED` to it to draw the same values again.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Whether a value was drawn, so that the seed matters for replaying the test.
    pub fn drawn(&self) -> bool {
        self.drawn.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The locale of generated people and companies.
    pub fn locale(&self) -> Locale {
        self.locale
    }

    /// A person; `n` (a sequence number) makes the e-mail address unique.
    pub fn person(&self, n: i64) -> Person {
        let mut rng = self.rng();
        match self.locale {
            Locale::English => {
                let first: String = FirstName(EN).fake_with_rng(&mut *rng);
                let last: String = LastName(EN).fake_with_rng(&mut *rng);
                let phone: String = CellNumber(EN).fake_with_rng(&mut *rng);
                let email = format!("{}.{}{n}@example.com", ascii(&first), ascii(&last));
                Person {
                    name: format!("{first} {last}"),
                    email,
                    phone,
                    locale: "en-US",
                }
            }
            Locale::Korean => {
                let given: String = FirstName(KoKr).fake_with_rng(&mut *rng);
                let family: String = LastName(KoKr).fake_with_rng(&mut *rng);
                let phone: String = CellNumber(KoKr).fake_with_rng(&mut *rng);
                let roman = |table: &[(&str, &'static str)], hangul: &str| {
                    table
                        .iter()
                        .find(|(h, _)| *h == hangul)
                        .map_or("user", |(_, r)| r)
                };
                let provider = KoKr::INTERNET_FREE_EMAIL_PROVIDER
                    [rng.random_range(0..KoKr::INTERNET_FREE_EMAIL_PROVIDER.len())];
                let email = format!(
                    "{}.{}{n}@{provider}",
                    roman(KO_GIVEN, &given),
                    roman(KO_FAMILY, &family)
                );
                Person {
                    name: format!("{family}{given}"),
                    email,
                    phone,
                    locale: "ko-KR",
                }
            }
        }
    }

    /// A company name.
    pub fn company(&self) -> String {
        let mut rng = self.rng();
        match self.locale {
            Locale::English => {
                let last: String = LastName(EN).fake_with_rng(&mut *rng);
                let suffix = EN_COMPANY_SUFFIXES[rng.random_range(0..EN_COMPANY_SUFFIXES.len())];
                format!("{last} {suffix}")
            }
            Locale::Korean => {
                let stem = KO_COMPANY_STEMS[rng.random_range(0..KO_COMPANY_STEMS.len())];
                let suffix = KO_COMPANY_SUFFIXES[rng.random_range(0..KO_COMPANY_SUFFIXES.len())];
                format!("{stem}{suffix}")
            }
        }
    }

    /// A random token, e.g. for invitations.
    pub fn token(&self) -> String {
        let mut rng = self.rng();
        format!("{:016x}", rng.random::<u64>())
    }
}

fn ascii(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_people() {
        for locale in [Locale::English, Locale::Korean] {
            let (a, b) = (Fakes::new(7, locale), Fakes::new(7, locale));
            assert_eq!((a.person(1), a.company()), (b.person(1), b.company()));
        }
    }

    #[test]
    fn a_generator_knows_whether_it_drew_anything() {
        let fakes = Fakes::new(7, Locale::English);
        assert!(!fakes.drawn());
        fakes.company();
        assert!(fakes.drawn());
    }

    #[test]
    fn korean_people_have_hangul_names_mobile_numbers_and_ascii_emails() {
        let person = Fakes::new(1, Locale::Korean).person(3);
        assert!(
            person.name.chars().all(|c| ('가'..='힣').contains(&c)),
            "{person:?}"
        );
        assert!(
            person.phone.starts_with("010-") && person.phone.len() == 13,
            "{person:?}"
        );
        assert!(
            person.email.is_ascii() && person.email.contains("3@"),
            "{person:?}"
        );
    }
}
