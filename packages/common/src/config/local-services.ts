// Where the repository's local services listen (scripts/services/services.sh): the defaults that let
// every service run on a development machine with no variable set.

export const LOCAL_KAFKA_BROKERS = '127.0.0.1:29092'

const LOCAL_POSTGRES = 'postgres://intellisite:intellisite@127.0.0.1:25432'

/** The users' database, where the API keeps users, rules and webhooks. */
export const LOCAL_DATABASE_URL = `${LOCAL_POSTGRES}/intellisite`

/** PostgreSQL beside the users' database (created on first use). */
export const LOCAL_DETECTIONS_STORE_URL = `${LOCAL_POSTGRES}/intellisite_detections`
