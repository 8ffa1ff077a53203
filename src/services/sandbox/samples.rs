//! The sandbox's sample knowledge: one file in each format the extractors read, and Q&A.

/// Q&A pairs: (question, answer).
pub const QAS: [(&str, &str); 3] = [
    (
        "What are your opening hours?",
        "Our shop is open Monday to Friday from 9:00 to 18:00 and on Saturday from 10:00 to 16:00.",
    ),
    (
        "How long does shipping take?",
        "Orders placed before 15:00 ship the same day; delivery takes 1 to 3 working days.",
    ),
    (
        "How do I return a product?",
        "You can return any product within 30 days: print the return label from your account and drop the parcel at a pickup point.",
    ),
];

/// Files: (file name, content type, bytes, title).
pub fn files() -> Vec<(&'static str, &'static str, Vec<u8>, &'static str)> {
    vec![
        (
            "shipping.md",
            "text/markdown",
            SHIPPING_MD.as_bytes().to_vec(),
            "Shipping guide",
        ),
        (
            "prices.csv",
            "text/csv",
            PRICES_CSV.as_bytes().to_vec(),
            "Price list",
        ),
        (
            "store.json",
            "application/json",
            STORE_JSON.as_bytes().to_vec(),
            "Store facts",
        ),
        (
            "about.html",
            "text/html",
            ABOUT_HTML.as_bytes().to_vec(),
            "About us",
        ),
        (
            "warranty.pdf",
            "application/pdf",
            pdf("Every Acme appliance carries a two year warranty covering parts and repairs."),
            "Warranty terms",
        ),
    ]
}

const SHIPPING_MD: &str = "# Shipping\n\n## Costs\n\nShipping is free for orders over 50 euros; smaller orders pay 4.95 euros.\n\n## Countries\n\nWe ship to the Netherlands, Belgium, Germany, Portugal and Spain.\n";
const PRICES_CSV: &str =
    "product,price,stock\nKettle,39.95,120\nToaster,49.00,80\nCoffee grinder,89.50,35\n";
const STORE_JSON: &str = r#"{"store": {"name": "Acme Home", "city": "Utrecht", "phone": "+31 30 123 4567", "email": "help@acme.example"}}"#;
const ABOUT_HTML: &str = "<!doctype html><html><head><title>About Acme Home</title></head><body><nav>Home | Shop | Contact</nav><main><h1>About Acme Home</h1><p>Acme Home has sold kitchen appliances since 1998. Our team of twelve answers every question within one working day.</p></main><footer>Copyright Acme</footer></body></html>";

/// A one-page PDF whose text layer says `text` (ASCII, without parentheses).
pub fn pdf(text: &str) -> Vec<u8> {
    let content = format!("BT /F1 14 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
    ];
    let objects: Vec<Vec<u8>> = objects.into_iter().map(String::into_bytes).collect();
    pdf_of(&objects)
}

/// A PDF of `objects`, numbered from 1 (the first is the catalog), with its cross-reference
/// table and trailer.
pub fn pdf_of(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(object);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}
