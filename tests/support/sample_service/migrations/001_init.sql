create table notes (id bigserial primary key, text text not null);
