// Package mysql is the MySQL/MariaDB half of the sql provider
// (mysql.sql.strata.dev): Database, User and Grant managed resources kept in
// sync through go-sql-driver/mysql. Identifiers are backtick-quoted by
// QuoteIdentifier; literals are bound as parameters, which the driver
// escapes (interpolateParams). It knows nothing about compositions.
package mysql
