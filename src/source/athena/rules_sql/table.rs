//! The CloudTrail table as the rule SQL sees it: which CloudTrail field is which column, and
//! in what shape (text, JSON text, struct, map).

/// How the table (sql/fragments/cloudtrail_columns.sql) holds a CloudTrail field.
#[derive(Clone, Copy, Debug)]
pub(super) enum Shape {
    /// STRING holding a JSON string.
    Text,
    /// STRING holding a JSON bool (`readOnly`, `managementEvent`) as `true`/`false`.
    Bool,
    /// STRING holding a JSON object as its text.
    Json,
    Struct(&'static [Field]),
    /// ARRAY<STRUCT<...>> of text fields.
    Structs(&'static [Field]),
    /// MAP<STRING, STRING>: not rebuilt, not testable.
    Map,
}

#[derive(Debug)]
pub(super) struct Field {
    /// The record's key, as CloudTrail spells it.
    pub(super) key: &'static str,
    /// The column or struct field name in the table.
    pub(super) column: &'static str,
    pub(super) shape: Shape,
}

pub(super) const fn f(key: &'static str, column: &'static str, shape: Shape) -> Field {
    Field { key, column, shape }
}

pub(super) use Shape::{Bool, Json, Map, Struct, Structs, Text};

pub(super) const SESSION_ISSUER: &[Field] = &[
    f("type", "type", Text),
    f("principalId", "principalid", Text),
    f("arn", "arn", Text),
    f("accountId", "accountid", Text),
    f("userName", "username", Text),
];

pub(super) const SESSION_CONTEXT: &[Field] = &[
    f(
        "attributes",
        "attributes",
        Struct(&[
            f("mfaAuthenticated", "mfaauthenticated", Text),
            f("creationDate", "creationdate", Text),
        ]),
    ),
    f("sessionIssuer", "sessionissuer", Struct(SESSION_ISSUER)),
    f(
        "webIdFederationData",
        "webidfederationdata",
        Struct(&[
            f("federatedProvider", "federatedprovider", Text),
            f("attributes", "attributes", Map),
        ]),
    ),
    f("sourceIdentity", "sourceidentity", Text),
    f("ec2RoleDelivery", "ec2roledelivery", Text),
    f("ec2IssuedInVPC", "ec2issuedinvpc", Text),
    f("assumedRoot", "assumedroot", Text),
];

pub(super) const USER_IDENTITY: &[Field] = &[
    f("type", "type", Text),
    f("principalId", "principalid", Text),
    f("arn", "arn", Text),
    f("accountId", "accountid", Text),
    f("invokedBy", "invokedby", Text),
    f("accessKeyId", "accesskeyid", Text),
    f("userName", "username", Text),
    f("identityProvider", "identityprovider", Text),
    f("credentialId", "credentialid", Text),
    f(
        "onBehalfOf",
        "onbehalfof",
        Struct(&[
            f("userId", "userid", Text),
            f("identityStoreArn", "identitystorearn", Text),
        ]),
    ),
    f(
        "inScopeOf",
        "inscopeof",
        Struct(&[
            f("sourceArn", "sourcearn", Text),
            f("sourceAccount", "sourceaccount", Text),
            f("issuerType", "issuertype", Text),
            f("credentialsIssuedTo", "credentialsissuedto", Text),
        ]),
    ),
    f("sessionContext", "sessioncontext", Struct(SESSION_CONTEXT)),
];

/// The table's columns, in its order.
pub(super) const COLUMNS: &[Field] = &[
    f("eventVersion", "eventversion", Text),
    f("userIdentity", "useridentity", Struct(USER_IDENTITY)),
    f("eventTime", "eventtime", Text),
    f("eventSource", "eventsource", Text),
    f("eventName", "eventname", Text),
    f("awsRegion", "awsregion", Text),
    f("sourceIPAddress", "sourceipaddress", Text),
    f("userAgent", "useragent", Text),
    f("errorCode", "errorcode", Text),
    f("errorMessage", "errormessage", Text),
    f("requestParameters", "requestparameters", Json),
    f("responseElements", "responseelements", Json),
    f("additionalEventData", "additionaleventdata", Json),
    f("requestID", "requestid", Text),
    f("eventID", "eventid", Text),
    f("readOnly", "readonly", Bool),
    f(
        "resources",
        "resources",
        Structs(&[
            f("ARN", "arn", Text),
            f("accountId", "accountid", Text),
            f("type", "type", Text),
        ]),
    ),
    f("eventType", "eventtype", Text),
    f("apiVersion", "apiversion", Text),
    f("managementEvent", "managementevent", Bool),
    f("recipientAccountId", "recipientaccountid", Text),
    f("serviceEventDetails", "serviceeventdetails", Json),
    f("sharedEventID", "sharedeventid", Text),
    f("vpcEndpointId", "vpcendpointid", Text),
    f("vpcEndpointAccountId", "vpcendpointaccountid", Text),
    f("eventCategory", "eventcategory", Text),
    f(
        "addendum",
        "addendum",
        Struct(&[
            f("reason", "reason", Text),
            f("updatedFields", "updatedfields", Text),
            f("originalRequestID", "originalrequestid", Text),
            f("originalEventID", "originaleventid", Text),
        ]),
    ),
    f(
        "sessionCredentialFromConsole",
        "sessioncredentialfromconsole",
        Text,
    ),
    f("edgeDeviceDetails", "edgedevicedetails", Json),
    f(
        "tlsDetails",
        "tlsdetails",
        Struct(&[
            f("tlsVersion", "tlsversion", Text),
            f("cipherSuite", "ciphersuite", Text),
            f("clientProvidedHostHeader", "clientprovidedhostheader", Text),
        ]),
    ),
];

/// The top-level fields every returned record carries: what the engine reads for time,
/// de-duplication, principals and evidence.
pub(super) const ALWAYS: &[&str] = &[
    "eventTime",
    "eventID",
    "eventName",
    "eventSource",
    "eventType",
    "userIdentity",
    "sourceIPAddress",
    "userAgent",
    "awsRegion",
    "errorCode",
    "recipientAccountId",
    "readOnly",
];

pub(super) fn column(key: &str) -> Option<&'static Field> {
    COLUMNS.iter().find(|c| c.key == key)
}
