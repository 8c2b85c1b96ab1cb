//! The *purchase* shape of `GET /nexus/lkey/{key}` (seed `004_…txt`): every field with the seed's
//! name and JSON type. What nexkey cannot know is present, empty or null, never invented.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveTime, Utc};
use poem_openapi::Object;

use crate::admin::Purchase;
use crate::fulfillment::{Catalog, Status};

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct PurchaseDto {
    /// The license's number in nexkey.
    pub id: i64,
    /// The product's configured name, else the one Nexway sent, else its `publisherProductId`.
    pub name: String,
    /// Always `nexus`.
    pub item_app: String,
    /// Always `package`.
    pub item_type: String,
    /// The product's `item_id` from the configuration; 0 when the product has none.
    pub item_id: i64,
    pub customer: CustomerDto,
    /// When the license was issued.
    pub purchased: DateTime<Utc>,
    /// The end of the license's last day; null for a perpetual license.
    pub expires: Option<DateTime<Utc>>,
    /// Usable now: neither suspended, canceled, superseded nor past its end date.
    pub active: bool,
    /// Revoked (by Nexway's cancel or by support).
    pub canceled: bool,
    /// From the product's term and renewal price; null for a perpetual product.
    pub renewal_term: Option<RenewalTermDto>,
    /// Nexway's references and nexkey's status of the license.
    pub custom_fields: BTreeMap<String, String>,
    /// The purchase this license renewed or replaced; null when it is the first.
    pub parent: Option<Box<PurchaseDto>>,
    pub show: bool,
    pub license_key: String,
    /// The product's image URL from the configuration; empty when none.
    pub image: String,
    /// The customer's link to this purchase (`admin.purchase_url`); empty when not configured.
    pub url: String,
}

/// The seed's member object. nexkey knows the buyer from Nexway's calls only: a forum member's
/// counters and profile are empty, zero or null.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct CustomerDto {
    pub id: i64,
    /// First and last name as Nexway sent them; empty when it sent none.
    pub name: String,
    pub title: String,
    pub timezone: String,
    pub formatted_name: String,
    pub primary_group: Option<GroupDto>,
    pub secondary_groups: Vec<GroupDto>,
    pub email: String,
    /// The buyer's first purchase.
    pub joined: DateTime<Utc>,
    pub registration_ip_address: String,
    pub warning_points: i64,
    pub reputation_points: i64,
    pub photo_url: String,
    pub photo_url_is_default: bool,
    pub cover_photo_url: String,
    pub profile_url: Option<String>,
    pub validating: bool,
    pub posts: i64,
    pub last_activity: Option<DateTime<Utc>>,
    pub last_visit: Option<DateTime<Utc>>,
    pub last_post: Option<DateTime<Utc>>,
    pub profile_views: i64,
    pub birthday: String,
    /// The buyer's Nexway details (company, Nexway user id) as one field group.
    pub custom_fields: Vec<FieldGroupDto>,
    pub rank: Vec<RankDto>,
    #[oai(rename = "achievements_points")]
    pub achievements_points: i64,
    pub allow_admin_emails: bool,
    pub completed: bool,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct GroupDto {
    pub id: i64,
    pub name: String,
    pub formatted_name: String,
}

#[derive(Debug, Clone, Object)]
pub struct FieldGroupDto {
    pub name: String,
    pub fields: Vec<FieldDto>,
}

#[derive(Debug, Clone, Object)]
pub struct FieldDto {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Object)]
pub struct RankDto {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub points: i64,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct RenewalTermDto {
    /// `d`, `w`, `m` or `y`.
    pub term: String,
    /// How many of `term`: every 6 months is `m` and 6.
    pub unit: i64,
    /// The configured renewal price; null when none is configured.
    pub price: Option<MoneyDto>,
    pub tax_class: Option<TaxDto>,
}

#[derive(Debug, Clone, Object)]
pub struct MoneyDto {
    pub currency: String,
    pub amount: String,
}

#[derive(Debug, Clone, Object)]
pub struct TaxDto {
    pub id: i64,
    pub name: String,
}

impl PurchaseDto {
    pub fn new(purchase: &Purchase, catalog: &Catalog, purchase_url: Option<&str>) -> Self {
        let license = &purchase.license;
        let policy = catalog.policy_or_defaults(&license.publisher_product_id);
        let name = purchase.product_name(catalog).to_owned();
        let renewal_term = policy
            .term
            .letter_and_count()
            .map(|(letter, count)| RenewalTermDto {
                term: letter.into(),
                unit: count.into(),
                price: policy.renewal_price.as_ref().map(|money| MoneyDto {
                    currency: money.currency.clone(),
                    amount: money.amount.clone(),
                }),
                tax_class: policy.tax_class.as_ref().map(|tax| TaxDto {
                    id: tax.id,
                    name: tax.name.clone(),
                }),
            });
        let mut custom_fields: BTreeMap<String, String> = purchase
            .references()
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_owned(), value?.to_owned())))
            .collect();
        custom_fields.extend([
            ("status".into(), purchase.status.as_str().into()),
            ("generator".into(), license.generator.clone()),
        ]);
        if license.trial {
            custom_fields.insert("trial".into(), "true".into());
        }
        PurchaseDto {
            id: license.id,
            name,
            item_app: "nexus".into(),
            item_type: "package".into(),
            item_id: policy.item_id.unwrap_or(0),
            customer: CustomerDto::new(&purchase.customer, purchase.buyer_name()),
            purchased: license.created_at,
            expires: license.end_date.map(|end| {
                end.and_time(NaiveTime::from_hms_opt(23, 59, 59).expect("valid time"))
                    .and_utc()
            }),
            active: purchase.status == Status::Active,
            canceled: purchase.status == Status::Canceled,
            renewal_term,
            custom_fields,
            parent: purchase
                .parent
                .as_ref()
                .map(|parent| Box::new(PurchaseDto::new(parent, catalog, purchase_url))),
            show: true,
            license_key: license.activation_code.clone(),
            image: policy.image.clone().unwrap_or_default(),
            url: purchase_url
                .map(|template| template.replace("{key}", &license.activation_code))
                .unwrap_or_default(),
        }
    }
}

impl CustomerDto {
    fn new(customer: &entity::customer::Model, name: String) -> Self {
        let nexway: Vec<FieldDto> = [
            ("companyName", &customer.company_name),
            ("nexwayUserId", &customer.nexway_user_id),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            Some(FieldDto {
                name: name.into(),
                value: value.clone()?,
            })
        })
        .collect();
        CustomerDto {
            id: customer.id,
            formatted_name: name.clone(),
            name,
            title: String::new(),
            timezone: String::new(),
            primary_group: None,
            secondary_groups: Vec::new(),
            email: customer.email.clone(),
            joined: customer.created_at,
            registration_ip_address: String::new(),
            warning_points: 0,
            reputation_points: 0,
            photo_url: String::new(),
            photo_url_is_default: true,
            cover_photo_url: String::new(),
            profile_url: None,
            validating: false,
            posts: 0,
            last_activity: None,
            last_visit: None,
            last_post: None,
            profile_views: 0,
            birthday: String::new(),
            custom_fields: if nexway.is_empty() {
                Vec::new()
            } else {
                vec![FieldGroupDto {
                    name: "Nexway".into(),
                    fields: nexway,
                }]
            },
            rank: Vec::new(),
            achievements_points: 0,
            allow_admin_emails: false,
            completed: true,
        }
    }
}
