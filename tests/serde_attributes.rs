//! Serde's container attributes on every kind of element: `deny_unknown_fields` refuses
//! JSON with a field the type does not have, `rename_all` (and a field's `rename`)
//! changes the keys serde writes and reads, `tag` adds one (serde ignores it when
//! reading a struct, so it does not go with `deny_unknown_fields`). protean stores and reads
//! the renamed shape on every store the build has: an aggregate with its entities and
//! value objects loads back, a process manager routes events by a renamed field and
//! keeps its state, a projection is queried on renamed indexed fields, and a set of
//! choices is written, displayed and parsed by its renamed names.

use std::process::ExitCode;
use std::sync::Arc;

use protean::prelude::*;
use protean::runtime::DeliveryMode;
use protean::store::{Store, StreamId};

#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{StoreCase, Trial};

mod library {
    use protean::prelude::*;

    /// Where a book stands.
    #[value_object]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct ShelfMark {
        pub room_code: String,
        pub shelf_number: u32,
    }

    /// How a book is published.
    #[value_object]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum Format {
        Paperback,
        AudioBook,
        #[serde(rename = "e-book")]
        EBook,
    }

    #[aggregate]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Book {
        pub title: String,
        pub shelf_mark: ShelfMark,
        pub format: Format,
        pub volumes: HasMany<Volume>,
        pub catalogued: bool,
    }

    #[entity(part_of = Book)]
    #[serde(deny_unknown_fields, rename_all = "PascalCase")]
    pub struct Volume {
        pub id: Identifier<Volume>,
        pub bar_code: String,
    }

    #[command(part_of = Book)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct AddBook {
        pub book_id: Identifier<Book>,
        pub title: String,
        pub shelf_mark: ShelfMark,
        pub format: Format,
        pub bar_codes: Vec<String>,
    }

    /// Sent by the process manager: stored, then read back, with its tag.
    #[command(part_of = Book)]
    #[serde(tag = "type", rename_all = "camelCase")]
    pub struct CatalogueBook {
        pub book_id: Identifier<Book>,
    }

    #[event(part_of = Book)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct BookAdded {
        pub book_id: Identifier<Book>,
        pub shelf_room: String,
        pub format: Format,
    }

    #[event(part_of = Book)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    pub struct BookCatalogued {
        pub book_id: Identifier<Book>,
    }

    pub struct Shelving;

    #[handler(part_of = Book)]
    impl Shelving {
        async fn add(ctx: &mut Context<Book>, cmd: AddBook) -> Result<(), DomainError> {
            let mut book = Book::builder()
                .id(cmd.book_id.clone())
                .title(cmd.title)
                .shelf_mark(cmd.shelf_mark.clone())
                .format(cmd.format)
                .catalogued(false)
                .build()?;
            for bar_code in cmd.bar_codes {
                book.volumes.add(Volume::builder().bar_code(bar_code).build()?);
            }
            book.raise(BookAdded {
                book_id: cmd.book_id,
                shelf_room: cmd.shelf_mark.room_code().clone(),
                format: cmd.format,
            });
            ctx.add(book)?;
            Ok(())
        }

        async fn catalogue(ctx: &mut Context<Book>, cmd: CatalogueBook) -> Result<(), DomainError> {
            let book = ctx.load(&cmd.book_id).await?;
            book.catalogued = true;
            book.raise(BookCatalogued { book_id: cmd.book_id });
            Ok(())
        }
    }

    /// The books on each shelf, queried by room and format.
    #[projection]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct ShelfView {
        #[key]
        pub book_id: Identifier<Book>,
        #[index]
        pub shelf_room: String,
        #[index]
        pub format: Format,
        #[index]
        #[serde(rename = "fileSize")]
        pub size_in_bytes: Option<u64>,
    }

    pub struct ShelfViews;

    #[projector(projection = ShelfView)]
    impl ShelfViews {
        async fn added(rows: &mut Rows<ShelfView>, event: &BookAdded) -> Result<(), DomainError> {
            let size_in_bytes = (event.format == Format::EBook).then_some(1_000);
            let view = ShelfView {
                book_id: event.book_id.clone(),
                shelf_room: event.shelf_room.clone(),
                format: event.format,
                size_in_bytes,
            };
            rows.put(view).await
        }
    }

    /// Catalogues each book added: routed by the events' `book_id`, which they store as
    /// `bookId` (and `book-id`).
    #[process_manager(correlate = book_id)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Cataloguing {
        pub book_id: Identifier<Book>,
        pub steps_taken: u32,
    }

    #[process_manager]
    impl Cataloguing {
        async fn added(ctx: &mut Flow<Self>, event: &BookAdded) -> Result<Self, DomainError> {
            ctx.send(CatalogueBook { book_id: event.book_id.clone() });
            Ok(Cataloguing { book_id: event.book_id.clone(), steps_taken: 1 })
        }

        async fn catalogued(&mut self, ctx: &mut Flow<Self>, _event: &BookCatalogued) -> Result<(), DomainError> {
            self.steps_taken += 1;
            ctx.end();
            Ok(())
        }
    }
}

use library::*;

fn domain(store: Arc<dyn Store>) -> Domain {
    Domain::builder()
        .module(module_path!().to_string() + "::library")
        .shared_store(store)
        .delivery(DeliveryMode::Inline)
        .build()
        .expect("the library model is valid")
}

fn add_book(book_id: &Identifier<Book>, room: &str, format: Format) -> AddBook {
    AddBook {
        book_id: book_id.clone(),
        title: "Dune".into(),
        shelf_mark: ShelfMark::new(room, 3u32).unwrap(),
        format,
        bar_codes: vec!["B-1".into(), "B-2".into()],
    }
}

/// Parses `json` as `T`, and says why it was refused.
fn refusal<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: serde_json::Value) -> String {
    match serde_json::from_value::<T>(json) {
        Ok(parsed) => panic!("parsed, and should not have: {parsed:?}"),
        Err(error) => error.to_string(),
    }
}

/// Every kind of element refuses JSON with a field it does not have when it says
/// `deny_unknown_fields`, and reads and writes the keys `rename_all` gives it.
fn every_element_denies_unknown_fields_and_renames() {
    let book_id = Identifier::<Book>::generate();
    let command = add_book(&book_id, "B2", Format::AudioBook);
    let json = serde_json::to_value(&command).unwrap();
    assert_eq!(json["bookId"], book_id.to_string());
    assert_eq!(json["shelfMark"], serde_json::json!({"roomCode": "B2", "shelfNumber": 3}));
    assert_eq!(json["format"], "AUDIO_BOOK");
    assert_eq!(serde_json::from_value::<AddBook>(json.clone()).unwrap(), command, "renamed keys read back");
    let mut extra = json.clone();
    extra["shelf"] = serde_json::json!("B2");
    assert!(refusal::<AddBook>(extra).contains("unknown field `shelf`"), "a command refuses an unknown field");
    let catalogue = serde_json::to_value(CatalogueBook { book_id: book_id.clone() }).unwrap();
    assert_eq!(catalogue, serde_json::json!({"type": "CatalogueBook", "bookId": book_id.to_string()}));
    let mut extra_inside = json;
    extra_inside["shelfMark"]["floor"] = serde_json::json!(1);
    assert!(refusal::<AddBook>(extra_inside).contains("unknown field `floor`"), "a value object refuses one too");

    let event = serde_json::json!({"bookId": book_id.to_string(), "shelfRoom": "B2", "format": "PAPERBACK"});
    assert_eq!(serde_json::from_value::<BookAdded>(event.clone()).unwrap().shelf_room, "B2");
    let mut extra = event;
    extra["shelf_room"] = serde_json::json!("B2");
    assert!(refusal::<BookAdded>(extra).contains("unknown field `shelf_room`"), "an event refuses the old spelling");
    let catalogued = serde_json::json!({"book-id": book_id.to_string()});
    assert_eq!(serde_json::from_value::<BookCatalogued>(catalogued).unwrap().book_id, book_id);

    let volume = serde_json::json!({"Id": Identifier::<Volume>::generate().to_string(), "BarCode": "B-1"});
    assert_eq!(serde_json::from_value::<Volume>(volume.clone()).unwrap().bar_code, "B-1");
    let mut extra = volume.clone();
    extra["Shelf"] = serde_json::json!(1);
    assert!(refusal::<Volume>(extra).contains("unknown field `Shelf`"), "an entity refuses an unknown field");

    let book = serde_json::json!({
        "id": book_id.to_string(),
        "title": "Dune",
        "shelfMark": {"roomCode": "B2", "shelfNumber": 3},
        "format": "e-book",
        "volumes": [volume],
        "catalogued": false,
    });
    let parsed = serde_json::from_value::<Book>(book.clone()).unwrap();
    assert_eq!((parsed.format, parsed.volumes.len()), (Format::EBook, 1));
    let mut extra = book;
    extra["borrower"] = serde_json::json!("ann");
    assert!(refusal::<Book>(extra).contains("unknown field `borrower`"), "an aggregate refuses an unknown field");

    let view =
        serde_json::json!({"bookId": book_id.to_string(), "shelfRoom": "B2", "format": "PAPERBACK", "fileSize": null});
    assert_eq!(serde_json::from_value::<ShelfView>(view.clone()).unwrap().size_in_bytes, None);
    let mut extra = view;
    extra["title"] = serde_json::json!("Dune");
    assert!(refusal::<ShelfView>(extra).contains("unknown field `title`"), "a projection refuses an unknown field");

    let flow = serde_json::json!({"bookId": book_id.to_string(), "stepsTaken": 1});
    assert_eq!(serde_json::from_value::<Cataloguing>(flow.clone()).unwrap().steps_taken, 1);
    let mut extra = flow;
    extra["steps_taken"] = serde_json::json!(1);
    assert!(refusal::<Cataloguing>(extra).contains("unknown field `steps_taken`"), "a process manager refuses one");
}

/// A set of choices is written, displayed and parsed by the names serde gives it.
fn choices_take_their_renamed_names() {
    assert_eq!(Format::CHOICES, ["PAPERBACK", "AUDIO_BOOK", "e-book"]);
    for format in [Format::Paperback, Format::AudioBook, Format::EBook] {
        let written = serde_json::to_value(format).unwrap();
        assert_eq!(written, format.to_string(), "Display writes what serde stores");
        assert_eq!(format.to_string().parse::<Format>().unwrap(), format, "FromStr reads it back");
        assert_eq!(serde_json::from_value::<Format>(written).unwrap(), format);
    }
    assert!("AudioBook".parse::<Format>().is_err(), "the Rust name is not the stored name");
}

/// A book goes through the store with its renamed keys: the aggregate (with an entity
/// and a value object) is stored under them and loads back; the process manager routes
/// both events by `book_id`, stored as `bookId` and `book-id`, and keeps its renamed
/// state; the projection is queried on its renamed indexed fields.
async fn renamed_elements_go_through_the_store(store: Arc<dyn Store>) {
    let domain = domain(Arc::clone(&store));
    let (dune, emma) = (Identifier::<Book>::generate(), Identifier::<Book>::generate());
    domain.process(add_book(&dune, "B2", Format::AudioBook)).await.unwrap().all_delivered().unwrap();
    domain.process(add_book(&emma, "C7", Format::EBook)).await.unwrap().all_delivered().unwrap();

    let book = domain.get(&dune).await.unwrap().expect("the book loads back");
    assert!(book.catalogued, "the process manager found the flow by `bookId` and sent its command");
    assert_eq!((book.shelf_mark.room_code().as_str(), book.format, book.volumes.len()), ("B2", Format::AudioBook, 2));
    let record = store.load(&StreamId::new("Book", dune.to_string())).await.unwrap().unwrap();
    let stored: serde_json::Value = serde_json::from_str(&record.state).unwrap();
    assert_eq!(stored["shelfMark"]["roomCode"], "B2", "stored under the renamed keys: {stored}");
    assert!(stored["volumes"][0]["BarCode"].is_string(), "{stored}");

    let (flow, ended) = domain.flow::<Cataloguing>(&dune).await.unwrap().expect("a flow per book");
    assert_eq!((flow.steps_taken, ended), (2, true), "both steps ran on the flow read back");

    let in_b2 = domain.query::<ShelfView>().filter(ShelfView::SHELF_ROOM.eq("B2")).fetch().await.unwrap();
    assert_eq!(in_b2.iter().map(|v| &v.book_id).collect::<Vec<_>>(), [&dune]);
    let by_name = domain.query::<ShelfView>().eq("shelf_room", "C7").fetch().await.unwrap();
    let by_key = domain.query::<ShelfView>().eq("shelfRoom", "C7").fetch().await.unwrap();
    assert_eq!((by_name.len(), by_key.len(), &by_name[0].book_id), (1, 1, &emma), "by the field's name or key");
    let e_books = domain.query::<ShelfView>().filter(ShelfView::FORMAT.eq(Format::EBook)).fetch().await.unwrap();
    assert_eq!(e_books.iter().map(|v| &v.book_id).collect::<Vec<_>>(), [&emma], "a renamed choice compares");
    let sized = domain.query::<ShelfView>().filter(ShelfView::SIZE_IN_BYTES.ge(Some(1_000))).fetch().await.unwrap();
    assert_eq!(sized.len(), 1, "a field renamed on its own is queried by its key");
    let ordered = domain.query::<ShelfView>().order_by_desc(ShelfView::SHELF_ROOM).fetch().await.unwrap();
    assert_eq!(ordered.iter().map(|v| v.shelf_room.as_str()).collect::<Vec<_>>(), ["C7", "B2"]);
}

fn cases() -> Vec<(&'static str, StoreCase)> {
    vec![("renamed_elements_go_through_the_store", |s| Box::pin(renamed_elements_go_through_the_store(s)))]
}

fn main() -> ExitCode {
    let mut trials = vec![
        Trial::test("every_element_denies_unknown_fields_and_renames", || {
            every_element_denies_unknown_fields_and_renames();
            Ok(())
        }),
        Trial::test("choices_take_their_renamed_names", || {
            choices_take_their_renamed_names();
            Ok(())
        }),
    ];
    trials.extend(harness::every_store("serde-attributes", cases, 4));
    harness::run(trials)
}
